"""What a job's status messages tell the scheduler: the app's queue ahead of it, its
start (for queue-ahead's pace), and its log lines.

A job sent ahead that starts while our count says `allowed` of ours already run means
the app may run more at once than allowed; that is checked a few times before
queue-ahead is turned off on the replica (`Pace.overrun`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from jobs import Status, StatusUpdate

from ._pool import ReplicaPool
from ._replica import Replica

__all__ = ["Attempt", "StatusWatch"]


@dataclass(slots=True)
class Attempt:
    """One job sent to one replica, as its status messages tell it."""

    replica: Replica
    #: Sent beyond the replica's window, to wait in its queue.
    ahead: bool
    #: The app said it runs it.
    started: bool = False


class StatusWatch:
    """Hears every attempt's status messages (`on_status`)."""

    def __init__(
        self, pool: ReplicaPool, on_log: Callable[[StatusUpdate], None] | None = None
    ) -> None:
        self.pool = pool
        self._on_log = on_log
        #: Where overrun checks run (the scheduler's task group, while it runs).
        self.group: TaskGroup | None = None

    def on_status(self, attempt: Attempt, update: StatusUpdate) -> None:
        replica = attempt.replica
        if update.code is Status.LOG and self._on_log is not None:
            self._on_log(update)
        elif update.code is Status.IN_QUEUE and update.rank is not None:
            self.pool.note_queue(replica, update.rank)
        elif update.code is Status.PROCESSING and not attempt.started:
            # Our job reached the front: whatever was queued ahead of it is gone.
            self.pool.note_queue(replica, 0)
            attempt.started = True
            pace = replica.pace
            pace.running += 1
            group = self.group
            over = attempt.ahead and pace.running > replica.limit.allowed
            if over and pace.cap and not pace.checking and group is not None:
                # One check at a time: a start seen before another job's end is common
                # (their messages come on different streams), and a task per job is not.
                pace.checking = True
                group.start_soon(self._check_overrun, replica)

    async def _check_overrun(self, replica: Replica) -> None:
        """A job sent ahead started while our count says `allowed` others run: unless
        their ends were only late (messages of another stream, a busy loop), the app
        runs more at once than allowed, and goes on doing so."""
        pace = replica.pace
        try:
            for _ in range(3):
                await anyio.sleep(max(0.1, 2 * (pace.gap or 0.0)))
                if pace.running <= replica.limit.allowed:
                    return
        finally:
            pace.checking = False
        if pace.overrun():
            self.pool.message(
                f"{replica.name} runs more than {replica.limit.allowed} of our jobs at "
                "once (its own limit is higher): no job is queued ahead on it any more"
            )
