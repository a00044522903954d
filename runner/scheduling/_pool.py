"""The pool of replicas: which one gets the next job, and which are out of rotation.

A job goes to the healthy replica with the most headroom: fewest jobs in flight plus
jobs the app says are queued ahead of ours (other users of a public Space), relative to
its current concurrency window. A slow or distant replica frees its slots later, so it
naturally gets less work. A replica that fails several attempts in a row (unreachable,
died, restarted) is ejected, probed with growing intervals, and put back when it
answers; if every replica is down the pool waits, with a message, until a deadline.
A replica that cannot come back (its Space crashed or was paused) is retired for good;
when all are, waiting stops at once with their reasons.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

import anyio

from jobs import AsyncClient, ConnectionFailed, JobCancelled, JobsError, ServerError

from ..errors import RunnerError
from ._retry import is_overload, retry_after_of
from ._throttle import AdaptiveLimit, Clock

__all__ = ["AllReplicasDown", "Replica", "ReplicaPool", "ReplicaStats"]

log = logging.getLogger("runner")


class AllReplicasDown(RunnerError):
    """Every replica stayed out of rotation past the deadline."""


@dataclass(slots=True)
class ReplicaStats:
    submitted: int = 0
    ok: int = 0
    failed: int = 0
    overloads: int = 0
    ejections: int = 0
    busy_seconds: float = 0.0


@dataclass(slots=True, eq=False)
class Replica:
    """One app the pool sends jobs to."""

    name: str
    client: AsyncClient
    limit: AdaptiveLimit
    #: Brings a dead replica back (restarts a local copy); None when nothing can be done.
    revive: Callable[[], Awaitable[None]] | None = None
    #: The GPU (CUDA_VISIBLE_DEVICES) of a local copy, for the summary; None elsewhere.
    gpu: str | None = None
    #: Who pays for its GPU quota (an HF token's account): replicas of one account pause
    #: together. None: the replica is its own account.
    account: str | None = None
    #: Reads the Space's runtime stage (space and duplicate replicas); None otherwise.
    stage: Callable[[], Awaitable[str]] | None = None
    #: Why it is out of rotation for good (its Space crashed, was paused, ...), if it is.
    retired: str | None = None
    in_flight: int = 0
    queued_ahead: int = 0
    failures_in_row: int = 0
    down_until: float | None = None
    probe_interval: float = 2.0
    stats: ReplicaStats = field(default_factory=ReplicaStats)

    def __repr__(self) -> str:
        state = "retired" if self.retired else "down" if self.down_until is not None else "up"
        return f"<Replica {self.name} {state} in_flight={self.in_flight}/{self.limit.allowed}>"

    @property
    def healthy(self) -> bool:
        return self.down_until is None

    def free(self, now: float) -> bool:
        return self.healthy and self.in_flight < self.limit.allowed and self.limit.paused(now) == 0

    def load(self) -> float:
        return (self.in_flight + self.queued_ahead) / self.limit.allowed


class ReplicaPool:
    """Hands out replicas with free capacity; tracks health; probes ejected ones."""

    def __init__(
        self,
        replicas: Sequence[Replica],
        *,
        eject_after: int = 3,
        max_probe_interval: float = 60.0,
        down_deadline: float = 600.0,
        clock: Clock = time.monotonic,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        if not replicas:
            raise ValueError("a pool needs at least one replica")
        self.replicas = list(replicas)
        self._eject_after = eject_after
        self._max_probe = max_probe_interval
        self._down_deadline = down_deadline
        self._clock = clock
        self._message = on_message or (lambda text: log.info("%s", text))
        self._changed = anyio.Event()
        self._all_down_since: float | None = None

    def __repr__(self) -> str:
        return f"<ReplicaPool {self.replicas}>"

    @property
    def capacity(self) -> int:
        return sum(r.limit.maximum for r in self.replicas)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    async def acquire(self, avoid: Iterable[str] = ()) -> Replica:
        """Wait for a replica with a free slot and take the slot. Replicas named in
        `avoid` (where this job already failed) are used only if no other is free."""
        avoided = set(avoid)
        while True:
            now = self._clock()
            free = [r for r in self.replicas if r.free(now)]
            preferred = [r for r in free if r.name not in avoided] or free
            if preferred:
                replica = min(preferred, key=Replica.load)
                replica.in_flight += 1
                replica.stats.submitted += 1
                return replica
            self._check_all_down(now)
            await self._wait_for_change(now)

    def release(
        self, replica: Replica, error: BaseException | None, *, busy_seconds: float = 0.0
    ) -> None:
        """Return the slot, and learn from how the attempt ended."""
        replica.in_flight -= 1
        replica.stats.busy_seconds += busy_seconds
        now = self._clock()
        if error is not None and (
            not isinstance(error, JobsError) or isinstance(error, JobCancelled)
        ):
            pass  # cancelled or stopped: says nothing about the replica
        elif error is None:
            replica.stats.ok += 1
            replica.failures_in_row = 0
            replica.limit.on_success()
        elif is_overload(error):
            replica.stats.overloads += 1
            replica.limit.on_overload(now, retry_after_of(error))
            self._message(
                f"{replica.name} is overloaded ({type(error).__name__}); "
                f"slowing down to {replica.limit.allowed} in flight"
            )
        elif _replica_fault(error):
            replica.stats.failed += 1
            replica.failures_in_row += 1
            if replica.failures_in_row >= self._eject_after and replica.healthy:
                self._eject(replica, now, error)
        else:
            # The app answered (an app error, a timeout): the replica itself is fine.
            replica.failures_in_row = 0
        self._notify()

    def retire(self, replica: Replica, reason: str) -> None:
        """Take `replica` out of rotation for good (it is never probed again)."""
        if replica.retired is None and replica.healthy:
            replica.stats.ejections += 1
        replica.retired = reason
        replica.down_until = math.inf
        self._message(f"{reason}; its jobs go to the other replicas")
        self.notify()

    def notify(self) -> None:
        """Wake the jobs waiting for a replica (a pause ended, a replica came back)."""
        self._notify()

    def note_queue(self, replica: Replica, queued_ahead: int | None) -> None:
        """What the app reported about its queue (jobs ahead of ours)."""
        replica.queued_ahead = max(0, queued_ahead or 0)

    async def probe_forever(self) -> None:
        """Probe ejected replicas and bring back those that answer. Runs until cancelled."""
        while True:
            now = self._clock()
            due = [r for r in self.replicas if r.down_until is not None and r.down_until <= now]
            for replica in due:
                await self._probe(replica)
            upcoming = [r.down_until for r in self.replicas if r.down_until is not None]
            delay = min(upcoming) - self._clock() if upcoming else self._max_probe
            with anyio.move_on_after(max(0.05, min(delay, self._max_probe))):
                await self._changed.wait()

    async def _probe(self, replica: Replica) -> None:
        try:
            if replica.revive is not None:
                await replica.revive()
            with anyio.fail_after(15):
                await replica.client.ping()
        except (JobsError, TimeoutError, OSError, RunnerError) as exc:
            replica.probe_interval = min(self._max_probe, replica.probe_interval * 2)
            replica.down_until = self._clock() + replica.probe_interval
            log.debug("probe of %s failed: %s", replica.name, exc)
            return
        replica.down_until = None
        replica.failures_in_row = 0
        replica.probe_interval = 2.0
        self._all_down_since = None
        self._message(f"{replica.name} answers again; back in rotation")
        self._notify()

    def _eject(self, replica: Replica, now: float, error: BaseException) -> None:
        replica.stats.ejections += 1
        replica.down_until = now + replica.probe_interval
        self._message(
            f"{replica.name} taken out of rotation after "
            f"{replica.failures_in_row} failures in a row ({type(error).__name__}); "
            "its jobs go to the other replicas, and it is probed again"
        )

    def _check_all_down(self, now: float) -> None:
        if any(r.healthy for r in self.replicas):
            self._all_down_since = None
            return
        if all(r.retired for r in self.replicas):
            reasons = "; ".join(str(r.retired) for r in self.replicas)
            raise AllReplicasDown(
                f"no replica is left: {reasons}. Fix them (or use others), then run the same "
                "command again to resume."
            )
        if self._all_down_since is None:
            self._all_down_since = now
            self._message(
                f"all {len(self.replicas)} replicas are down; waiting up to "
                f"{self._down_deadline:g} s for one to answer"
            )
        elif now - self._all_down_since > self._down_deadline:
            raise AllReplicasDown(
                f"no replica answered for {self._down_deadline:g} s; stopped. Check the apps "
                "are running, then run the same command again to resume."
            )

    async def _wait_for_change(self, now: float) -> None:
        wakeups = [r.limit.paused_until for r in self.replicas if r.limit.paused(now) > 0]
        wakeups += [r.down_until for r in self.replicas if r.down_until is not None]
        timeout = max(0.01, min(wakeups) - now) if wakeups else 1.0
        with anyio.move_on_after(min(timeout, 1.0)):
            await self._changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, anyio.Event()
        changed.set()


def _replica_fault(error: BaseException) -> bool:
    """Failures that say something about the replica, not about the job."""
    return isinstance(error, (ConnectionFailed, ServerError))
