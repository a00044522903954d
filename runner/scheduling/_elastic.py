"""When to start or pause an elastic copy: a pure decision on a snapshot of the fleet.

The run's pace is projected from each replica's measured pace (rows per second) and the
time it is ready from: now for a replica up, the end of its pause for one paused by a
ZeroGPU quota (lost capacity meanwhile), and the expected start-up time for a copy asked
to start. `finish_at` is when that pace finishes the backlog.

* Grow, one copy at a time, up to `maximum`, while the backlog would otherwise finish
  after `deadline_at`; without a deadline, while it is more than what the copies finish
  in the time a new copy takes to start (so the new one has work left when it is up).
  A copy that would not make the finish sooner is not asked for.
* Within the budget: a copy is asked for only when the projected spend (spent so far,
  each paid copy up until the projected finish, the new copy from now, start-up
  included, and the pause at the end) stays within it. Otherwise the decision is to
  hold, saying so.
* Shrink: a running copy above `minimum` whose share the others finish in time (the
  same test, without it) has nothing left to do: it is paused at once. A copy is not
  paused while growing, so the two never alternate within one decision.

Everything is in the caller's clock: the decision is a function of the snapshot, so it
is the same each time for the same numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Capacity", "FleetDecision", "FleetView", "decide", "finish_at"]


@dataclass(frozen=True, slots=True)
class Capacity:
    """One replica's pace: `rate` rows per second from `ready_at` on; it costs `price`
    dollars per second while up (0: not billed to the user)."""

    name: str
    rate: float
    ready_at: float
    price: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetView:
    """What the decision looks at; times in the caller's clock (seconds)."""

    now: float
    #: Rows not finished yet (running ones included).
    backlog: int
    #: Replicas the decision does not govern (Spaces used as they are, fixed copies...).
    others: Sequence[Capacity]
    #: Elastic copies up, in the order they were started.
    running: Sequence[Capacity]
    #: Elastic copies asked to start, not up yet (ready at their expected time).
    starting: Sequence[Capacity]
    #: Names of the elastic copies that may be started, in order.
    parked: Sequence[str]
    minimum: int
    maximum: int
    #: Expected pace of a new copy (rows per second) and its price (dollars per second;
    #: None: unknown).
    copy_rate: float
    copy_price: float | None
    #: Seconds a new copy takes to start (measured from the copies started, else a guess).
    start_seconds: float
    deadline_at: float | None = None
    #: Dollars left of `run.budget` (budget minus spent); None: no budget.
    budget_left: float | None = None
    #: Seconds a copy is still billed while it is paused at the end.
    pause_margin: float = 10.0


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetDecision:
    """`start` or `pause` a copy, or `hold` (a copy is needed but may not be started)."""

    action: str
    copy: str
    why: str
    #: Projected finish (caller's clock) and spend (dollars, from now on) after it.
    finish_at: float
    cost: float


def finish_at(backlog: float, capacities: Sequence[Capacity], now: float) -> float:
    """When `capacities` finish `backlog` rows, each working from its `ready_at` (inf if
    none ever works)."""
    if backlog <= 0:
        return now
    t, rate, left = now, 0.0, float(backlog)
    for cap in sorted(capacities, key=lambda c: max(c.ready_at, now)):
        if cap.rate <= 0:
            continue
        start = max(cap.ready_at, now)
        if rate > 0 and left <= rate * (start - t):
            return t + left / rate
        left -= rate * (start - t)
        t, rate = start, rate + cap.rate
    return t + left / rate if rate > 0 else math.inf


def decide(view: FleetView) -> list[FleetDecision]:
    """The decisions for this snapshot (often none); see the module docstring."""
    grow = _grow(view)
    return grow if grow else _shrink(view)


def _too_slow(view: FleetView, finish: float) -> bool:
    if view.deadline_at is not None:
        return finish > view.deadline_at
    return finish - view.now > view.start_seconds


def _fits(view: FleetView, finish: float) -> bool:
    """The others finish in time without one copy: it has nothing left to do. With a
    deadline, in time to start a copy again if the pace drops."""
    if view.deadline_at is not None:
        return finish <= view.deadline_at - view.start_seconds
    return finish - view.now <= view.start_seconds


def _cost(view: FleetView, copies: Sequence[Capacity], finish: float) -> float:
    """Dollars the paid copies cost from now until `finish`, and their pause at the end."""
    return sum(c.price * (finish - view.now + view.pause_margin) for c in copies)


def _grow(view: FleetView) -> list[FleetDecision]:
    active = [*view.running, *view.starting]
    out: list[FleetDecision] = []
    for name in view.parked:
        if len(active) >= view.maximum:
            break
        finish = finish_at(view.backlog, [*view.others, *active], view.now)
        below_minimum = len(active) < view.minimum
        if not below_minimum and not _too_slow(view, finish):
            break
        price = view.copy_price
        new = Capacity(name, view.copy_rate, view.now + view.start_seconds, price or 0.0)
        after = finish_at(view.backlog, [*view.others, *active, new], view.now)
        if not below_minimum and after >= finish:
            break  # it would be up after the backlog is done
        cost = _cost(view, [*view.others, *active, new], after)
        why = _why_grow(view, finish, below_minimum)
        if view.budget_left is not None and (price is None or cost > view.budget_left):
            known = "its price is unknown" if price is None else f"${cost:.2f} projected"
            out.append(
                FleetDecision(
                    action="hold",
                    copy=name,
                    why=f"{why}, but run.budget forbids it ({known}, "
                    f"${view.budget_left:.2f} left of the budget)",
                    finish_at=finish,
                    cost=_cost(view, [*view.others, *active], finish),
                )
            )
            break
        out.append(FleetDecision(action="start", copy=name, why=why, finish_at=after, cost=cost))
        active.append(new)
    return out


def _why_grow(view: FleetView, finish: float, below_minimum: bool) -> str:
    if below_minimum:
        return f"fewer than min ({view.minimum}) copies run"
    took = f"the backlog of {view.backlog} rows takes {_span(finish - view.now)} at this pace"
    if view.deadline_at is not None:
        return f"{took}, past run.deadline (in {_span(view.deadline_at - view.now)})"
    return f"{took}, longer than a copy takes to start ({_span(view.start_seconds)})"


def _shrink(view: FleetView) -> list[FleetDecision]:
    running = list(view.running)
    out: list[FleetDecision] = []
    for copy in reversed(view.running):  # the last started is paused first
        if len(running) + len(view.starting) <= view.minimum:
            break
        rest = [c for c in running if c is not copy]
        finish = finish_at(view.backlog, [*view.others, *rest, *view.starting], view.now)
        if not _fits(view, finish):
            break
        running = rest
        out.append(
            FleetDecision(
                action="pause",
                copy=copy.name,
                why=f"nothing left to do: the others finish the backlog of {view.backlog} "
                f"rows in {_span(finish - view.now)}",
                finish_at=finish,
                cost=_cost(view, [*view.others, *running, *view.starting], finish),
            )
        )
    return out


def _span(seconds: float) -> str:
    if math.isinf(seconds):
        return "forever"
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.0f} min"
