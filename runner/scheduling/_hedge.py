"""Hedging the tail: a straggler on a slow replica is sent again where it ends sooner.

Once every row has been taken from the input and no job waits for a slot, a free
replica is a chance to finish the batch sooner: when a job still in flight elsewhere is
expected to end later than a copy sent to the free replica now (by a clear margin,
`_MARGIN`), the copy is sent (`Hedger.pick`). The first of the two to return a result
is the row's; the other is cancelled on its server: exactly, if it is still queued (it
never runs); a running plain function cannot be stopped, and what it goes on costing is
counted (`hedge_seconds`, its replica's run time at least). Each row is copied at most
once, and its outcome is recorded once, with the winner's result, replica and timings.

A copy that fails leaves the original alone; an original that fails (its replica
died) drops its copy and is retried as any other attempt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from jobs import AsyncJob, Endpoint, JobCancelled, Status

from ._pool import ReplicaPool
from ._replica import Replica
from ._route import finish_in

__all__ = ["Copy", "Hedger", "Straggler", "cost_of", "drop"]

log = logging.getLogger("runner")

#: A copy is sent only if it would end this many times sooner than the original...
_MARGIN = 1.5
#: ... and at least this many seconds sooner.
_LEAST = 0.05
#: How often the tail is looked at when nothing changes.
_LOOK = 0.2
_CANCEL_TIMEOUT = 10.0
_WAITING = (Status.STARTING, Status.JOINING_QUEUE, Status.IN_QUEUE)


@dataclass(slots=True)
class Copy:
    """A straggler's copy on another replica."""

    replica: Replica
    scope: anyio.CancelScope
    job: AsyncJob | None = None
    endpoint: Endpoint | None = None
    api: dict[str, str] | None = None
    value: Any = None
    #: The scheduler's own record of the attempt (its status messages).
    attempt: Any = None


class Straggler(Protocol):
    """What the hedger reads and writes on a scheduler's task."""

    replica: Replica | None
    job: AsyncJob | None
    race: anyio.CancelScope | None
    copy: Copy | None
    winner: Copy | None
    hedged: bool
    hedge_seconds: float

    @property
    def submission(self) -> Any: ...


#: Sends one submission's copy (fills in its job, endpoint and API identity).
Submit = Callable[[Copy, Any], AsyncJob]
#: Returns the copy's slot: how it ended and how long it took.
Release = Callable[[Copy, BaseException | None, float], None]


class Hedger:
    """Copies stragglers onto free replicas while the run is in its tail."""

    def __init__(
        self,
        pool: ReplicaPool,
        *,
        submit: Submit,
        result: Callable[[AsyncJob], Awaitable[Any]],
        release: Release,
        stopping: Callable[[], bool],
    ) -> None:
        self._pool = pool
        self._submit = submit
        self._result = result
        self._release = release
        self._stopping = stopping

    async def run(self, group: TaskGroup, tasks: Callable[[], Iterable[Straggler]]) -> None:
        """Look for stragglers each time something changes, until the run stops."""
        while not self._stopping():
            self.pick(group, tasks())
            await self._pool.changed(_LOOK)

    def pick(self, group: TaskGroup, tasks: Iterable[Straggler]) -> None:
        if self._pool.waiting or self._stopping():
            return  # rows still waiting for a slot come first
        candidates = [t for t in tasks if _hedgeable(t)]
        now = time.monotonic()
        for replica in self._pool.free_replicas():
            mine = finish_in(replica)
            lefts = [
                (left, t) for t in candidates if t.replica is not replica if (left := _left(t, now))
            ]
            if mine is None or not lefts:
                continue
            left, task = max(lefts, key=lambda pair: pair[0])
            if left < mine * _MARGIN or left - mine < _LEAST or not self._pool.take(replica):
                continue
            candidates.remove(task)
            task.hedged = True
            task.copy = Copy(replica, anyio.CancelScope())
            replica.stats.hedges += 1
            group.start_soon(self._send_copy, task, task.copy)

    async def _send_copy(self, task: Straggler, copy: Copy) -> None:
        error: BaseException | None = JobCancelled("the original ended first")
        started = time.monotonic()
        try:
            with copy.scope:
                value = await self._result(self._submit(copy, task.submission))
                if task.race is not None and task.winner is None:
                    copy.value, task.winner, error = value, copy, None
                    assert task.replica is not None
                    charge(task, task.job, task.replica)
                    task.race.cancel()
        except Exception as exc:
            error = exc  # the original goes on
            log.debug("a hedge's copy failed: %s", exc)
        finally:
            if task.copy is copy:
                task.copy = None
            if error is not None and copy.job is not None:
                await drop(copy.job)
            self._release(copy, error, time.monotonic() - started)

    @staticmethod
    def lost(task: Straggler) -> None:
        """The original ended first: its copy is cancelled (and what it costs counted)."""
        copy = task.copy
        if copy is None:
            return
        task.copy = None
        charge(task, copy.job, copy.replica)
        copy.scope.cancel()


def charge(task: Straggler, job: AsyncJob | None, replica: Replica) -> None:
    """Count the app time the losing job `job` on `replica` costs."""
    seconds = cost_of(job, replica)
    task.hedge_seconds += seconds
    replica.stats.hedge_seconds += seconds


def cost_of(job: AsyncJob | None, replica: Replica) -> float:
    """App seconds a job cancelled now costs: nothing if it never started (a queued job
    is dropped exactly), else what it ran, and at least the replica's run time (a
    running plain function runs to its end)."""
    if job is None or job.timings.started is None:
        return 0.0
    return max(time.monotonic() - job.timings.started, replica.pace.run or 0.0)


async def drop(job: AsyncJob) -> None:
    """Cancel `job` on its server: exactly while it waits, forcibly once it runs."""
    if job.done():
        return
    force = job.status().code not in _WAITING
    with anyio.CancelScope(shield=True), anyio.move_on_after(_CANCEL_TIMEOUT):
        try:
            await job.cancel(force=force)
        except Exception as exc:
            log.info("could not cancel %r on its server: %s", job, exc)


def _hedgeable(task: Straggler) -> bool:
    return (
        not task.hedged
        and task.race is not None
        and task.replica is not None
        and task.job is not None
        and not task.job.done()
    )


def _left(task: Straggler, now: float) -> float | None:
    """Expected seconds until the straggler's current job ends."""
    assert task.replica is not None and task.job is not None
    pace, allowed = task.replica.pace, task.replica.limit.allowed
    timings = task.job.timings
    if pace.run is None:
        # Its replica never finished a job: it has taken this long, and it is as likely
        # to take as long again as to end now.
        return now - timings.submitted
    if timings.started is not None:
        return max(0.0, timings.started + pace.run - now) + (pace.gap or 0.0) / 2
    rank = task.job.status().rank or 0
    return (pace.gap or 0.0) / 2 + pace.run * (1.0 + (rank + 1) / allowed)
