"""`run.budget`: stop scheduling before the paid copies' projected cost passes it.

The projection is what is spent so far plus what the copies up now burn while the run
winds down: running jobs get `run.grace` to finish, and pausing the copies takes a few
seconds more. Stopping there keeps the final bill under the budget; the stop is clean
and resumable, as a Ctrl-C is.
"""

from __future__ import annotations

import anyio

from ..launch import Fleet
from ..scheduling import Scheduler

__all__ = ["watch_budget"]

#: Seconds the Hub takes to pause a copy, counted in the projection.
PAUSE_MARGIN = 10.0


async def watch_budget(
    fleet: Fleet, scheduler: Scheduler, *, budget: float, grace: float, every: float = 0.5
) -> None:
    """Halt `scheduler` once the projected spend would pass `budget`. Runs until cancelled."""
    if unknown := fleet.unpriced():
        fleet.on_message(
            f"run.budget cannot count {', '.join(unknown)}: the Hub's price for its hardware "
            "is unknown"
        )
    while not scheduler.stopping:
        spent, rate = fleet.spent(), fleet.burn_rate()
        projected = spent + rate * (grace + PAUSE_MARGIN)
        if rate > 0 and projected >= budget:
            scheduler.halt(
                f"budget: ${spent:.2f} spent of ${budget:.2f}, and the copies cost "
                f"${rate * 3600:.2f}/h; stopped before the budget is passed. Everything is "
                "recorded: raise run.budget and run the same command again to resume."
            )
            return
        await anyio.sleep(every)
