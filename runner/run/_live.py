"""`report.html` while the run goes: rewritten every few seconds with what only the
running process knows (progress, throughput, ETA, pauses, replicas, cost so far).

Two kinds of writes (`runner.store.LivePage`), in a worker thread: a full one reads the
whole run folder, and costs more as records accumulate; a light one keeps the charts of
the last full write and renders the live numbers and the newest outputs, at a cost that
does not grow. Each kind is spaced so that it takes at most `share` (2%) of the run's
wall time, and no closer than `every` seconds: the page follows every few seconds, its
charts every few seconds at 10k records and every several minutes at 1M
(`bench/bench_live.py`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from ..launch import Fleet
from ..scheduling import AccountPauses, ReplicaPool, format_pause

if TYPE_CHECKING:
    from ..store import LivePage
from ._progress import Progress
from ._summary import SummaryBuilder

__all__ = ["LiveReport", "LiveSources", "live_state"]

log = logging.getLogger("runner")

#: The shortest interval between writes, and the share of wall time writes may take.
EVERY = 5.0
SHARE = 0.02
#: Failure causes the live section lists (the report's failures section has them all).
FAILURE_GROUPS = 5


@dataclass(frozen=True, slots=True)
class LiveSources:
    """Where the live page's numbers come from: the run's own objects, read only."""

    progress: Progress
    pool: ReplicaPool
    pauses: AccountPauses
    fleet: Fleet
    #: This run's outcomes, failures grouped by cause.
    summary: SummaryBuilder


def live_state(sources: LiveSources, *, refresh: float) -> dict[str, Any]:
    """The `live` mapping `build_report` renders (plain data, already formatted)."""
    snap = sources.progress.snapshot()
    finished = snap["ok"] + snap["failed"] + snap["cancelled"]
    done = snap["skipped"] + finished
    total = snap["total"]
    eta = snap["eta_seconds"]
    wall, clock = time.time(), time.monotonic()
    # Only paid copies of ours have a cost; a run without any shows none.
    costs = [c for c in sources.fleet.costs().values() if c.cost_usd is not None]
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
        "failures": [
            {"cause": cause, "count": group.count}
            for cause, group in sorted(sources.summary.failures.items(), key=lambda g: -g[1].count)
        ][:FAILURE_GROUPS],
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
    """Rewrites `report.html` of `root` with `state(refresh)` until cancelled: light
    writes every `interval` seconds, a full one every `full_interval`."""

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
        self.full_interval = every
        self._last_full: float | None = None
        self.writes = 0
        self._page: LivePage | None = None

    async def run(self) -> None:
        while True:
            await self.write(self._state(self.interval))  # read on the loop's thread
            await anyio.sleep(self.interval)

    async def write(self, state: Mapping[str, Any]) -> None:
        """One write; a failure is logged and the next write tries again. Neither kind
        is cancellable midway: the final report, written after the run's task group
        ends, can never be overwritten by a live write still under way."""
        from ..store import LivePage  # jinja2 and plotly: only once a live page is due

        if self._page is None:
            self._page = LivePage(self.root)
        page = self._page
        started = time.perf_counter()
        due = self._last_full is None or started - self._last_full >= self.full_interval
        full = due or not page.has_base
        try:
            if full:
                # In a thread, not a worker process: anyio's process workers import the
                # main module again, which would run a user's unguarded script twice.
                context = await anyio.to_thread.run_sync(page.read, state)
                await anyio.to_thread.run_sync(page.write_full, context)
            else:
                await anyio.to_thread.run_sync(page.write_light, state)
        except Exception:
            log.warning("could not write the live report of %s", self.root, exc_info=True)
        cost = time.perf_counter() - started
        self.writes += 1
        # The first write also loads jinja2 and plotly: not what the next ones cost.
        spaced = max(self.every, cost / self._share) if self.writes > 1 else self.every
        if full:
            self._last_full, self.full_interval = started, spaced
        else:
            self.interval = spaced
