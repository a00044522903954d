"""The run's control of its elastic copies: every `every` seconds, a snapshot of the pool
(each replica's measured pace, the ZeroGPU pause under way, the copies starting) and of
the backlog goes to `runner.scheduling.decide`, and its decisions are carried out:

* start: the parked copy is put back to PENDING and the pool's prober connects it (which
  duplicates or restarts it through the Hub and waits until it runs);
* pause: the copy takes no new job at once, its running jobs finish, then it is paused
  through the Hub (it stops billing; a later start restarts it);
* hold: a copy is needed but `run.budget` forbids it; said once, until it changes.

Each decision is one line in the progress and one row of `summary.json`'s `fleet`
(when, which copy, why, the backlog, the copies after it, projected finish and spend);
so is each copy coming up (`up`) or failing to (`failed`), for the timeline.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
from anyio.abc import TaskGroup

from ..launch import ElasticGroup, Fleet
from ..scheduling import (
    Capacity,
    FleetDecision,
    FleetView,
    Replica,
    ReplicaPool,
    ReplicaState,
    decide,
)
from ..scheduling import Clock as ClockType
from ._budget import PAUSE_MARGIN

__all__ = ["ElasticControl"]

log = logging.getLogger("runner")

#: Seconds a copy is expected to take to start before one has been measured (a Space
#: usually needs a minute or more to be scheduled, built and booted).
DEFAULT_START_SECONDS = 60.0
#: A copy not up after this many times the measured start-up (and this many seconds
#: more) is no longer counted on.
_OVERDUE, _OVERDUE_FLOOR = 3.0, 60.0
#: Longest wait for a copy's running jobs before it is paused anyway.
_DRAIN_TIMEOUT = 600.0


@dataclass(slots=True)
class _Member:
    replica: Replica
    #: "parked", "starting", "up", "draining" or "failed".
    state: str
    asked_at: float | None = None


class ElasticControl:
    """See the module docstring. `records` are the decisions, as `summary.json` keeps them."""

    def __init__(
        self,
        groups: list[ElasticGroup],
        pool: ReplicaPool,
        fleet: Fleet,
        *,
        backlog: Callable[[], int | None],
        deadline: float | None,
        budget: float | None,
        on_message: Callable[[str], None],
        started: float | None = None,
        clock: ClockType = time.monotonic,
        wall: ClockType = time.time,
    ) -> None:
        """`started`: when the run started (`clock`), which `deadline` counts from."""
        self._groups = groups
        self._pool = pool
        self._fleet = fleet
        self._backlog = backlog
        self._budget = budget
        self._message = on_message
        self._clock = clock
        self._wall = wall
        self._started = clock() if started is None else started
        self._deadline_at = None if deadline is None else self._started + deadline
        self._members: dict[str, _Member] = {}
        for group in groups:
            for index, replica in enumerate(group.replicas):
                state = "up" if index < group.minimum else "parked"
                self._members[replica.name] = _Member(replica, state)
        self._held: set[str] = set()
        self.records: list[dict[str, Any]] = []

    async def run(self, every: float = 1.0) -> None:
        """Decide every `every` seconds until cancelled (pauses run in tasks of their own)."""
        async with anyio.create_task_group() as group:
            while True:
                self.step(group)
                await anyio.sleep(every)

    def step(self, tasks: TaskGroup) -> list[FleetDecision]:
        """Look once and carry out what is decided; returns the decisions."""
        backlog = self._backlog()
        if backlog is None:
            return []
        made: list[FleetDecision] = []
        for group in self._groups:
            view = self._view(group, backlog)
            if view is None:
                continue
            for decision in decide(view):
                if self._apply(decision, view, tasks):
                    made.append(decision)
        return made

    # -- the snapshot -----------------------------------------------------------------

    def _view(self, group: ElasticGroup, backlog: int) -> FleetView | None:
        now = self._clock()
        mine = {r.name for r in group.replicas}
        others = [
            c for r in self._pool.replicas if r.name not in mine if (c := self._capacity(r, now))
        ]
        members = [self._members[r.name] for r in group.replicas]
        self._notice_starts(members, now, _mean(group.start_times) or DEFAULT_START_SECONDS)
        measured = [rate for m in members if (rate := _rate(m.replica)) is not None]
        measured = measured or [c.rate for c in others]
        if not measured:
            return None  # no pace known yet: nothing to project
        copy_rate = sum(measured) / len(measured)
        start = _mean(group.start_times) or DEFAULT_START_SECONDS
        running, starting = [], []
        for m in members:
            price = self._fleet.price_of_copy(m.replica.name) or 0.0
            if m.state == "up" and m.replica.healthy:
                rate = _rate(m.replica) or copy_rate
                ready = now + m.replica.limit.paused(now)
                running.append(Capacity(m.replica.name, rate, ready, price))
            elif m.state == "starting" and m.asked_at is not None:
                starting.append(Capacity(m.replica.name, copy_rate, m.asked_at + start, price))
        spent = self._fleet.spent()
        return FleetView(
            now=now,
            backlog=backlog,
            others=others,
            running=running,
            starting=starting,
            parked=[m.replica.name for m in members if m.state == "parked"],
            minimum=group.minimum,
            maximum=group.maximum,
            copy_rate=copy_rate,
            copy_price=self._fleet.price_of(group.spec.hardware),
            start_seconds=start,
            deadline_at=self._deadline_at,
            budget_left=None if self._budget is None else self._budget - spent,
            pause_margin=PAUSE_MARGIN,
        )

    def _capacity(self, replica: Replica, now: float) -> Capacity | None:
        """A replica outside the group, up, with a measured pace (paused by a quota: from
        the end of its pause)."""
        rate = _rate(replica)
        if not replica.healthy or rate is None:
            return None
        price = self._fleet.price_of_copy(replica.name) or 0.0
        return Capacity(replica.name, rate, now + replica.limit.paused(now), price)

    def _notice_starts(self, members: list[_Member], now: float, start: float) -> None:
        """Copies asked for that came up, were refused, or are long overdue. An overdue
        copy is no longer counted as capacity to come (the pool still connects it if it
        ever answers, and it is then governed again)."""
        for m in members:
            if m.state not in ("starting", "failed") or m.asked_at is None:
                continue
            took = now - m.asked_at
            if m.replica.healthy:
                m.state = "up"
                self._event("up", m.replica.name, f"up {took:.0f} s after it was asked", now)
            elif m.state == "failed":
                continue
            elif m.replica.state is ReplicaState.REFUSED:
                m.state = "failed"
                self._event("failed", m.replica.name, f"did not start: {m.replica.reason}", now)
            elif took > max(_OVERDUE * start, start + _OVERDUE_FLOOR):
                m.state = "failed"
                why = f"not up {took:.0f} s after it was asked ({m.replica.reason}); not counted"
                self._event("failed", m.replica.name, why, now)

    # -- carrying out -----------------------------------------------------------------

    def _apply(self, decision: FleetDecision, view: FleetView, tasks: TaskGroup) -> bool:
        member = self._members[decision.copy]
        if decision.action == "hold":
            if decision.copy in self._held:
                return False  # said already
            self._held.add(decision.copy)
        elif decision.action == "start":
            self._held.discard(decision.copy)
            member.state, member.asked_at = "starting", view.now
            self._unpark(member.replica)
        elif decision.action == "pause":
            member.state = "draining"
            member.replica.refuse("paused by the elastic fleet: nothing left to do")
            tasks.start_soon(self._pause, member)
        self._record(decision, view)
        return True

    def _unpark(self, replica: Replica) -> None:
        """PARKED (refused) -> PENDING, due for a connection now: the pool's prober
        connects it as it connects any replica that has not answered yet."""
        replica.state = ReplicaState.PENDING
        replica.reason = "starting"
        replica.down_until = self._clock()
        self._pool.notify()

    async def _pause(self, member: _Member) -> None:
        replica = member.replica
        with anyio.move_on_after(_DRAIN_TIMEOUT):
            # The pool signals no event per replica when a job ends: look often.
            while replica.in_flight:  # noqa: ASYNC110
                await anyio.sleep(0.05)
        if await self._fleet.pause_copy(replica.name):
            member.state = "parked"
            replica.reason = "paused by the elastic fleet"
        else:
            member.state = "failed"

    def _event(self, action: str, copy: str, why: str, now: float) -> None:
        """A copy's start ended (`up`, `failed`): a row of the timeline, not a decision."""
        copies = sum(1 for m in self._members.values() if m.state in ("up", "starting"))
        backlog = self._backlog()
        self.records.append(
            {
                "at": datetime.fromtimestamp(self._wall()).isoformat(timespec="seconds"),
                "elapsed": round(now - self._started, 1),
                "action": action,
                "copy": copy,
                "why": why,
                "backlog": backlog,
                "copies": copies,
                "projected_finish_seconds": None,
                "spent_usd": round(self._fleet.spent(), 6),
                "projected_cost_usd": None,
            }
        )
        self._message(f"fleet: {copy} {why}")

    def _record(self, decision: FleetDecision, view: FleetView) -> None:
        copies = sum(1 for m in self._members.values() if m.state in ("up", "starting"))
        spent = self._fleet.spent()
        finish_in = decision.finish_at - view.now
        row = {
            "at": datetime.fromtimestamp(self._wall()).isoformat(timespec="seconds"),
            "elapsed": round(view.now - self._started, 1),
            "action": decision.action,
            "copy": decision.copy,
            "why": decision.why,
            "backlog": view.backlog,
            "copies": copies,
            "projected_finish_seconds": None if math.isinf(finish_in) else round(finish_in, 1),
            "spent_usd": round(spent, 6),
            "projected_cost_usd": round(spent + decision.cost, 6),
        }
        self.records.append(row)
        finish = "never" if math.isinf(finish_in) else f"in {finish_in:.0f} s"
        self._message(
            f"fleet: {decision.action} {decision.copy} ({copies} running): {decision.why}; "
            f"projected finish {finish}, cost ${row['projected_cost_usd']:.2f}"
        )


def _rate(replica: Replica) -> float | None:
    """Rows per second the replica finishes, from its jobs so far (None: none yet)."""
    done = replica.stats.ok + replica.stats.failed
    if not done or replica.stats.busy_seconds <= 0:
        return None
    return replica.limit.allowed / (replica.stats.busy_seconds / done)


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
