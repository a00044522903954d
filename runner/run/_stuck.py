"""Copies that answer but make no progress: restarted through the Hub.

A replica can answer `/config` (so probes find it well) while no job on it finishes:
its queue is wedged, its GPU hung. Every `every` seconds each replica holding jobs is
looked at: when none of its jobs has finished for `after` seconds (`run.stuck_after`;
by default ten times its normal run time, and at least two minutes) it is stuck. A copy
in the user's account (`duplicate:`) is then taken out of rotation, its jobs are given
up there and retried on the others, it is restarted through the Hub, waited for (its
connection is made again, as at the start) and put back; `stuck: factory_reboot` on
the copy asks the Hub for a factory reboot instead, `stuck: leave` for nothing. Anything
else (a public Space, a URL) is never restarted: it is said once, and left to the
pool's own health checks. A `local:` copy (spacerun's own process) in the same state is killed and
started again. A copy restarted `MAX_RESTARTS` times is left out for the rest of the run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from jobs import AsyncClient, JobsError

from ..errors import RunnerError
from ..launch import Fleet
from ..scheduling import Clock as ClockType
from ..scheduling import Replica, ReplicaPool, Scheduler

__all__ = ["StuckWatch"]

log = logging.getLogger("runner")

#: Stuck after this many times the replica's normal run time without a finished job ...
_FACTOR = 10.0
#: ... and never sooner than this (a Space's first job may load a model).
_FLOOR = 120.0
MAX_RESTARTS = 3


@dataclass(slots=True)
class _Progress:
    finished: int
    since: float
    restarting: bool = False
    restarts: int = 0
    said: bool = False


class StuckWatch:
    """See the module docstring."""

    def __init__(
        self,
        pool: ReplicaPool,
        scheduler: Scheduler,
        fleet: Fleet,
        *,
        after: float | None,
        on_message: Callable[[str], None],
        clock: ClockType = time.monotonic,
    ) -> None:
        self._pool = pool
        self._scheduler = scheduler
        self._fleet = fleet
        self._after = after
        self._message = on_message
        self._clock = clock
        self._progress: dict[str, _Progress] = {}
        self._clients: list[AsyncClient] = []
        #: How many times each copy was restarted, by replica name.
        self.restarts: dict[str, int] = {}

    async def run(self, every: float = 1.0) -> None:
        """Look every `every` seconds until cancelled; closes the clients it opened."""
        try:
            async with anyio.create_task_group() as tasks:
                while True:
                    self.step(tasks)
                    await anyio.sleep(every)
        finally:
            with anyio.CancelScope(shield=True):
                for client in self._clients:
                    await client.aclose()

    def step(self, tasks: TaskGroup) -> list[Replica]:
        """The replicas found stuck now (a restart of each of ours is started)."""
        now = self._clock()
        stuck = []
        for replica in self._pool.replicas:
            progress = self._progress.get(replica.name)
            finished = replica.stats.ok + replica.stats.failed
            if progress is None or finished != progress.finished or not replica.in_flight:
                kept = progress or _Progress(finished, now)
                kept.finished, kept.since = finished, now
                self._progress[replica.name] = kept
                continue
            if progress.restarting or not replica.healthy:
                continue
            limit = self._limit(replica)
            if now - progress.since <= limit:
                continue
            stuck.append(replica)
            why = f"no job finished for {now - progress.since:.0f} s ({replica.in_flight} held)"
            local = replica.name in self._fleet.local_restarts
            if not local and not self._fleet.may_restart(replica.name):
                if not progress.said:
                    progress.said = True
                    self._message(
                        f"{replica.name} makes no progress: {why}; not restarted (not a copy "
                        "of yours, or its stuck: is leave)"
                    )
                continue
            if progress.restarts >= MAX_RESTARTS:
                if not progress.said:
                    progress.said = True
                    self._pool.retire(replica, f"{replica.name} is stuck again ({why})")
                continue
            progress.restarting = True
            progress.restarts += 1
            tasks.start_soon(self._restart, replica, progress, why)
        return stuck

    def _limit(self, replica: Replica) -> float:
        if self._after is not None:
            return self._after
        normal = _normal_run_time(replica) or _pool_run_time(self._pool.replicas)
        return max(_FLOOR, _FACTOR * normal) if normal else _FLOOR

    async def _restart(self, replica: Replica, progress: _Progress, why: str) -> None:
        # Out of rotation, and not probed (a ping would answer) until it is back.
        replica.eject(self._clock(), f"stuck: {why}")
        replica.down_until = None
        given_up = self._scheduler.abandon(replica, f"stuck ({why}); restarting it")
        self._pool.notify()
        self._message(
            f"{replica.name} is stuck: {why}; its {given_up} jobs go to the other replicas, "
            "and it is restarted"
        )
        try:
            if (local := self._fleet.local_restarts.get(replica.name)) is not None:
                client = await local()  # killed, started again, connected
            else:
                await self._fleet.restart_copy(replica.name)
                client = await replica.open_client()  # waits until it runs again
        except (JobsError, RunnerError, OSError, TimeoutError) as exc:
            self._message(f"{replica.name} did not come back after a restart ({exc}); probed")
            replica.down_until = self._clock()
        else:
            self._clients.append(client)
            replica.move_to(client)
            replica.down_until = self._clock()  # the pool's probe puts it back
            self.restarts[replica.name] = self.restarts.get(replica.name, 0) + 1
            self._message(f"{replica.name} restarted; back in rotation once it answers")
        finally:
            progress.restarting = False
            progress.since = self._clock()
            self._pool.notify()


def _normal_run_time(replica: Replica) -> float | None:
    done = replica.stats.ok + replica.stats.failed
    return replica.stats.busy_seconds / done if done else None


def _pool_run_time(replicas: list[Replica]) -> float | None:
    done = sum(r.stats.ok + r.stats.failed for r in replicas)
    busy = sum(r.stats.busy_seconds for r in replicas)
    return busy / done if done else None
