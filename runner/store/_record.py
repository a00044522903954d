"""One line of `results.jsonl`: a `ResultRecord` and how a submission ended.

A line starts with `{"key":"<key>","status":"<status>",` (see `ResultRecord.to_line`):
`runner.store._scan` rebuilds the index from that prefix alone.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Any

__all__ = ["RecordStatus", "ResultRecord", "utc_now"]


class RecordStatus(str, Enum):
    """How a submission ended."""

    OK = "ok"
    """The app returned a result; `outputs` holds it. Skipped on resume."""
    ERROR = "error"
    """It failed for good (app error, or retries exhausted); `error_type` says why."""
    CANCELLED = "cancelled"
    """The run was interrupted before it finished (Ctrl-C); submitted again on resume."""
    TIMEOUT = "timeout"
    """It did not finish within the job timeout, after all attempts."""


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, as `finished_at` stores it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultRecord:
    """One finished submission, as one line of `results.jsonl`.

    `inputs` holds file inputs as their paths; `outputs` is keyed by the endpoint's
    return labels, with files as paths relative to the run folder. `causes` has
    one short cause per failed attempt.
    """

    key: str
    row: int
    status: RecordStatus
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error_type: str | None = None
    error_message: str | None = None
    attempts: int = 1
    causes: tuple[str, ...] = ()
    replica: str | None = None
    queue_time: float | None = None
    run_time: float | None = None
    finished_at: str = field(default_factory=utc_now)
    #: When the first attempt was sent (ISO 8601, UTC); None in folders written before
    #: it was recorded, and for submissions never sent.
    submitted_at: str | None = None
    #: The API that computed it: `signature` (a short hash of the endpoint's parameters
    #: and outputs), `gradio` (the app's version) and `space` (a Space's id) if known.
    api: dict[str, str] | None = None

    def to_line(self) -> bytes:
        """The JSON line (with its newline), starting `{"key":...,"status":...,`."""
        body = {
            "row": self.row,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "error_type": self.error_type,
            "error_message": self.error_message,
        }
        if self.api is not None:
            # Before `attempts`: the report's line pattern reads the fields after it.
            body["api"] = self.api
        body |= {
            "attempts": self.attempts,
            "causes": list(self.causes),
            "replica": self.replica,
            "queue_time": self.queue_time,
            "run_time": self.run_time,
            "finished_at": self.finished_at,
        }
        if self.submitted_at is not None:
            body["submitted_at"] = self.submitted_at
        rest = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        head = f'{{"key":{json.dumps(self.key)},"status":"{RecordStatus(self.status).value}",'
        return (head + rest[1:] + "\n").encode("utf-8")

    @classmethod
    def from_line(cls, line: bytes | str) -> ResultRecord:
        """Parse one line of `results.jsonl`. Raises ValueError if it is not a record."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("a results line must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultRecord:
        """Build a record from its JSON object; unknown fields are ignored."""
        try:
            return cls(
                key=str(data["key"]),
                row=int(data["row"]),
                status=RecordStatus(data["status"]),
                inputs=dict(data.get("inputs") or {}),
                outputs=data.get("outputs"),
                error_type=data.get("error_type"),
                error_message=data.get("error_message"),
                attempts=int(data.get("attempts", 1)),
                causes=tuple(data.get("causes") or ()),
                replica=data.get("replica"),
                queue_time=data.get("queue_time"),
                run_time=data.get("run_time"),
                finished_at=str(data.get("finished_at", "")),
                submitted_at=data.get("submitted_at"),
                api=data.get("api"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a results record: {exc!r}") from exc


def _json_default(value: object) -> object:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} in a result is not JSON serialisable")
