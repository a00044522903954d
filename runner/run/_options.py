"""How to run beyond the manifest (`RunOptions`), and a handle to stop a run from code."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..store import ResultRecord
from ._progress import ProgressMode

__all__ = ["RunHandle", "RunOptions", "Stoppable"]


class Stoppable(Protocol):
    """What a `RunHandle` drives: the run's scheduler."""

    @property
    def stopping(self) -> bool: ...
    def stop(self) -> None: ...
    def abort(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to run, beyond the manifest (the CLI's flags)."""

    app: str | None = None
    endpoint: str | None = None
    overrides: Sequence[str] = ()
    restart: bool = False
    retry_failed: bool = True
    progress: ProgressMode = "auto"
    handle_signals: bool = True
    hub_endpoint: str | None = None
    environ: Mapping[str, str] | None = None
    command: Sequence[str] | None = None
    #: Use the run folder's validation stamp and key cache (`runner.run._resume`). False
    #: re-validates and re-expands every row on resume, as before the cache existed
    #: (kept for the benchmark and for tests that compare both paths).
    fast_resume: bool = True
    #: How long the run waits, with a message, when no replica answers (at start or
    #: mid-run) before it stops; run it again to resume.
    all_down_deadline: float = 600.0
    #: Seconds between writes of `report.html` while the run goes (at least: a write
    #: takes at most 2% of the run's wall time, see `runner.run._live`); None: the
    #: report is written once, at the end.
    live_report: float | None = 5.0
    #: Called with each record once it is on disk (`runner.map_iter` listens here).
    on_record: Callable[[ResultRecord], None] | None = None


@dataclass(slots=True)
class RunHandle:
    """Cancel a running batch from code: `handle.stop()` as a first Ctrl-C (waiting jobs
    cancelled, running ones given the grace period), `handle.abort()` as a second."""

    _scheduler: Stoppable | None = None
    _pending: list[str] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        """True once `stop()` or `abort()` was called."""
        return bool(self._pending) or (self._scheduler is not None and self._scheduler.stopping)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
        else:
            self._pending.append("stop")

    def abort(self) -> None:
        if self._scheduler is not None:
            self._scheduler.abort()
        else:
            self._pending.append("abort")

    def attach(self, scheduler: Stoppable) -> None:
        """Called by the run once its scheduler exists; a stop asked for before then
        is passed on now."""
        self._scheduler = scheduler
        for action in self._pending:
            getattr(scheduler, action)()
