"""Job status values, with the names gradio_client users know."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum

from .messages import ProgressUnit

__all__ = ["Status", "StatusUpdate"]


class Status(str, Enum):
    """Where a job is. The string values are gradio_client's."""

    #: Created; waiting for its turn in its session (or for its files to upload).
    STARTING = "STARTING"
    #: `queue/join` is being sent.
    JOINING_QUEUE = "JOINING_QUEUE"
    #: The app refused the job because its queue is full.
    QUEUE_FULL = "QUEUE_FULL"
    #: Waiting in the app's queue; `rank`, `queue_size` and `eta` say how long.
    IN_QUEUE = "IN_QUEUE"
    #: Inputs sent, waiting for the server to start (kept for gradio_client parity).
    SENDING_DATA = "SENDING_DATA"
    #: The app runs the job.
    PROCESSING = "PROCESSING"
    #: A generator endpoint produced an output and goes on.
    ITERATING = "ITERATING"
    #: The app reported progress (`progress_data`).
    PROGRESS = "PROGRESS"
    #: The app logged a message (`gr.Info` / `gr.Warning`); see `log`.
    LOG = "LOG"
    #: Finished: `success` tells whether it produced a result.
    FINISHED = "FINISHED"
    #: Cancelled before it produced its result.
    CANCELLED = "CANCELLED"

    @property
    def is_final(self) -> bool:
        return self in (Status.FINISHED, Status.CANCELLED)

    # Ordered as a job goes through them (gradio_client's order, LOG beside PROGRESS),
    # not alphabetically as strings would be: `sorted(codes)` follows a job's life.
    @property
    def _rank(self) -> int:
        return _ORDER.index(self)

    def __lt__(self, other: object) -> bool:
        return self._rank < other._rank if isinstance(other, Status) else NotImplemented

    def __le__(self, other: object) -> bool:
        return self._rank <= other._rank if isinstance(other, Status) else NotImplemented

    def __gt__(self, other: object) -> bool:
        return self._rank > other._rank if isinstance(other, Status) else NotImplemented

    def __ge__(self, other: object) -> bool:
        return self._rank >= other._rank if isinstance(other, Status) else NotImplemented


_ORDER = (
    Status.STARTING,
    Status.JOINING_QUEUE,
    Status.QUEUE_FULL,
    Status.IN_QUEUE,
    Status.SENDING_DATA,
    Status.PROCESSING,
    Status.PROGRESS,
    Status.LOG,
    Status.ITERATING,
    Status.FINISHED,
    Status.CANCELLED,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusUpdate:
    """A snapshot of a job's status (gradio_client's `StatusUpdate` fields)."""

    code: Status
    rank: int | None = None
    queue_size: int | None = None
    eta: float | None = None
    success: bool | None = None
    time: datetime = field(default_factory=datetime.now)
    progress_data: tuple[ProgressUnit, ...] | None = None
    #: A `log` message: (level, text); level is "info", "warning", "success" (or "error").
    log: tuple[str, str] | None = None
    #: The log message's title (`gr.Info(message, title=...)`), when it has one.
    log_title: str | None = None
