"""An outcome as a line of `results.jsonl`: outputs named after the endpoint's return
labels, files as paths relative to the run folder."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

from jobs import Endpoint

from ..scheduling import Outcome, output_names
from ..store import RecordStatus, ResultRecord, RunFolder

__all__ = ["record_of"]


def record_of(outcome: Outcome, endpoint: Endpoint, folder: RunFolder) -> ResultRecord:
    """The record of `outcome`, a submission to `endpoint` of the run in `folder`. Its
    outputs are named after the endpoint the job was bound to (a replica that came back
    with its outputs in another order names them in its own order)."""
    submission = outcome.submission
    outputs = None
    if outcome.status is RecordStatus.OK:
        bound = outcome.endpoint or endpoint
        outputs = _named_outputs(bound, outcome.value, functools.partial(_relative, folder))
    error = outcome.error
    return ResultRecord(
        key=submission.key,
        row=submission.row,
        status=RecordStatus(outcome.status.value),
        inputs=dict(submission.inputs),
        outputs=outputs,
        error_type=None if error is None else type(error).__name__,
        error_message=None if error is None else (getattr(error, "message", None) or str(error)),
        attempts=outcome.attempts,
        causes=outcome.causes,
        replica=outcome.replica,
        queue_time=_round(outcome.queue_time),
        run_time=_round(outcome.run_time),
        finished_at=_iso(outcome.finished_at),
        submitted_at=None if outcome.submitted_at is None else _iso(outcome.submitted_at),
        api=outcome.api,
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


def _relative(folder: RunFolder, value: str) -> str:
    try:
        return folder.relative(value)
    except ValueError:
        return value


def _named_outputs(
    endpoint: Endpoint, value: Any, relative: Callable[[str], str]
) -> dict[str, Any]:
    values = value if len(endpoint.returns) > 1 else (value,)
    names = output_names(endpoint)
    return {name: _relativize(v, relative) for name, v in zip(names, values, strict=False)}


def _relativize(value: Any, relative: Callable[[str], str]) -> Any:
    if isinstance(value, str) and os.path.isabs(value) and os.path.exists(value):
        return relative(value)
    if isinstance(value, list):
        return [_relativize(v, relative) for v in value]
    if isinstance(value, tuple):
        return [_relativize(v, relative) for v in value]
    if isinstance(value, dict):
        return {k: _relativize(v, relative) for k, v in value.items()}
    return value


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)
