"""What the scheduler takes in (`SubmissionLike`), hands out (`Outcome`), and tells the
progress display (`SchedulerListener`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from jobs import Endpoint

from ..store import RecordStatus

__all__ = ["Outcome", "SchedulerListener", "SubmissionLike"]


class SubmissionLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def row(self) -> int: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one submission ended, after all its attempts."""

    submission: SubmissionLike
    status: RecordStatus
    value: Any = None
    error: BaseException | None = None
    attempts: int = 0
    causes: tuple[str, ...] = ()
    replica: str | None = None
    queue_time: float | None = None
    run_time: float | None = None
    #: Wall-clock time (epoch seconds) the first attempt was sent; None if never sent.
    submitted_at: float | None = None
    finished_at: float = field(default_factory=time.time)
    #: The endpoint the last attempt was bound to (the replica's API when it was sent;
    #: its outputs are named after it); None if never sent.
    endpoint: Endpoint | None = None
    #: Which API computed it: the endpoint's signature hash and the app's gradio version.
    api: dict[str, str] | None = None
    #: A copy was sent to another replica (`run.hedge`); the app seconds the losing job
    #: cost (0 when it was still queued, so cancelled exactly).
    hedged: bool = False
    hedge_seconds: float = 0.0


class SchedulerListener(Protocol):
    """What the progress display hears from the scheduler."""

    def attempt_started(self, key: str, replica: str) -> None: ...
    def retrying(self, key: str, cause: str, delay: float) -> None: ...
    def outcome(self, outcome: Outcome) -> None: ...
