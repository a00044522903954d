"""What a 5xx from a Space replica means: its runtime stage, read again from the Hub.

A Space that answers 5xx (other than a full queue) may have crashed (RUNTIME_ERROR),
failed a rebuild (BUILD_ERROR), been paused by its owner (PAUSED), fallen asleep, or be
restarting. The stage tells which: a broken one is retired from the pool with the stage
in the message (a run left with no replica stops with that reason); one on its way up
(asleep, building, starting) takes no jobs until it runs again, and its failures are not
counted against it; a running one was a passing error, handled as any 5xx.

    watch = StageWatch(pool)
    if watch.wants(replica, error):
        task_group.start_soon(watch.check, replica)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable

import anyio

from jobs import JobsError, QueueFull, ServerError, broken_stage_advice

from ._pool import ReplicaPool
from ._replica import Replica

__all__ = ["StageWatch"]

log = logging.getLogger("runner")

_UP = frozenset({"RUNNING", "RUNNING_BUILDING"})


class StageWatch:
    """Re-reads a Space replica's stage after a 5xx; see the module docstring."""

    def __init__(
        self,
        pool: ReplicaPool,
        *,
        poll: float = 5.0,
        deadline: float = 900.0,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        self._pool = pool
        self._poll = poll
        self._deadline = deadline
        self._sleep = sleep
        self._message = on_message or (lambda text: log.info("%s", text))
        self._checking: set[str] = set()

    def wants(self, replica: Replica, error: BaseException | None) -> bool:
        """Whether this attempt's end calls for a look at the replica's stage."""
        return (
            replica.stage is not None
            and replica.retired is None
            and replica.name not in self._checking
            and isinstance(error, ServerError)
            and not isinstance(error, QueueFull)
        )

    async def check(self, replica: Replica) -> None:
        """Read the stage; retire, hold or leave the replica accordingly."""
        assert replica.stage is not None
        self._checking.add(replica.name)
        try:
            stage = await self._read(replica)
            if stage is None or stage in _UP:
                return
            if (advice := broken_stage_advice(stage)) is not None:
                self._pool.retire(replica, f"{replica.name} is {stage}: {advice}")
                return
            await self._wait_until_up(replica, stage)
        finally:
            self._checking.discard(replica.name)

    async def _wait_until_up(self, replica: Replica, stage: str) -> None:
        """Hold the replica (no jobs, failures forgiven) until its Space runs again."""
        self._message(f"{replica.name} is {stage}; waiting for it to run again")
        replica.limit.paused_until = math.inf
        waited = 0.0
        try:
            while stage not in _UP and waited < self._deadline:
                await self._sleep(self._poll)
                waited += self._poll
                replica.failures_in_row = 0
                stage = await self._read(replica) or stage
                if (advice := broken_stage_advice(stage)) is not None:
                    self._pool.retire(replica, f"{replica.name} is {stage}: {advice}")
                    return
        finally:
            replica.limit.paused_until = 0.0
            replica.failures_in_row = 0
            self._pool.notify()
        if stage in _UP:
            # It may run another build now: its API is read again before its next job.
            self._pool.recheck(replica)
            self._message(f"{replica.name} runs again; back in rotation")

    async def _read(self, replica: Replica) -> str | None:
        assert replica.stage is not None
        try:
            with anyio.fail_after(60):
                return await replica.stage()
        except (JobsError, TimeoutError) as exc:
            log.info("could not read the stage of %s: %s", replica.name, exc)
            return None
