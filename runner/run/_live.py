"""`report.html` while the run goes: rewritten every few seconds with what only the
running process knows (progress, throughput, ETA, pauses, replicas, cost so far).

The report is rebuilt from the run folder each time (`runner.store.build_report`), in a
worker thread, so its cost grows with the records: the interval grows with it, so that
the writes take at most `share` (2%) of the run's wall time. At 10k records a write
takes a fraction of a second and the page follows every few seconds; at 1M records it
takes seconds and the page follows every few minutes (`bench/bench_live.py`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from ..launch import Fleet
from ..scheduling import AccountPauses, ReplicaPool, format_pause
from ._progress import Progress

__all__ = ["LiveReport", "LiveSources", "live_state"]

log = logging.getLogger("runner")

#: The shortest interval between writes, and the share of wall time writes may take.
EVERY = 5.0
SHARE = 0.02


@dataclass(frozen=True, slots=True)
class LiveSources:
    """Where the live page's numbers come from: the run's own objects, read only."""

    progress: Progress
    pool: ReplicaPool
    pauses: AccountPauses
    fleet: Fleet


def live_state(sources: LiveSources, *, refresh: float) -> dict[str, Any]:
    """The `live` mapping `build_report` renders (plain data, already formatted)."""
    snap = sources.progress.snapshot()
    finished = snap["ok"] + snap["failed"] + snap["cancelled"]
    done = snap["skipped"] + finished
    total = snap["total"]
    eta = snap["eta_seconds"]
    wall, clock = time.time(), time.monotonic()
    costs = sources.fleet.costs()
    spent = sources.fleet.spent()
    projected = spent + sources.fleet.burn_rate() * eta if eta is not None else None
    return {
        "updated": datetime.now().strftime("%H:%M:%S"),
        "refresh": max(2, math.ceil(refresh)),
        "done": done,
        "total": total,
        "percent": 100.0 * done / total if total else None,
        "ok": snap["ok"],
        "failed": snap["failed"],
        "in_flight": snap["in_flight"],
        "rate": snap["rate"],
        "eta": _duration(eta) if eta is not None else None,
        "elapsed": _duration(snap["elapsed"]),
        "cost": f"${spent:.2f}" if costs else None,
        "cost_projected": f"${projected:.2f}" if costs and projected is not None else None,
        "pauses": [
            f"{format_pause(p.reason, p.until, wall)}: {', '.join(p.replicas)}"
            for p in sources.pauses.records
            if p.until > wall
        ],
        "note": snap["note"],
        "replicas": [
            {
                "name": r.name,
                "state": r.state.value,
                "in_flight": r.in_flight,
                "note": _replica_note(r.limit.paused(clock), r.reason),
            }
            for r in sources.pool.replicas
        ],
    }


def _replica_note(paused: float, reason: str | None) -> str | None:
    if paused == math.inf:
        return "paused"
    if paused > 0:
        return f"paused for {_duration(paused)} (rate limit or quota)"
    return reason or None


def _duration(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class LiveReport:
    """Rewrites `report.html` of `root` with `state(refresh)` until cancelled."""

    def __init__(
        self,
        root: Path,
        state: Callable[[float], Mapping[str, Any]],
        *,
        every: float = EVERY,
        share: float = SHARE,
    ) -> None:
        self.root = root
        self._state = state
        self.every = every
        self._share = share
        self.interval = every
        self.writes = 0
        #: Seconds the last write took.
        self.last_cost = 0.0

    async def run(self) -> None:
        while True:
            # Not cancellable mid-write: the final report, written after the run's task
            # group ends, can never be overwritten by a live write still under way.
            await anyio.to_thread.run_sync(self.write)
            await anyio.sleep(self.interval)

    def write(self) -> None:
        """One write; a failure is logged and the next write tries again."""
        from ..store import build_report  # jinja2 and plotly: only once a live page is due

        started = time.perf_counter()
        try:
            build_report(self.root, live=self._state(self.interval))
        except Exception:
            log.warning("could not write the live report of %s", self.root, exc_info=True)
        self.last_cost = time.perf_counter() - started
        self.writes += 1
        self.interval = max(self.every, self.last_cost / self._share)
