"""The state a replica pool shares between its parts, and how a change is said: jobs
waiting for a slot are woken (all of them, or only as many as slots freed), and the
pool's messages go to its owner.

The parts build on it one over the other: the API check (`_apicheck`), the probes
(`_probe`), and the pool that hands out slots (`runner.scheduling._pool`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import anyio

from jobs import AsyncClient, Endpoint

from ._replica import Replica
from ._retry import cause_of
from ._throttle import Clock

__all__ = ["PoolBase"]

log = logging.getLogger("runner")

#: Queue-ahead sized by itself keeps at most this many jobs waiting per allowed slot.
_AHEAD_PER_SLOT = 16
_AHEAD_MOST = 64


class PoolBase:
    """The replicas, their waiters and the pool's settings; see `ReplicaPool`."""

    def __init__(
        self,
        replicas: Sequence[Replica],
        *,
        api_name: str | None = None,
        eject_after: int = 3,
        max_probe_interval: float = 60.0,
        down_deadline: float = 600.0,
        start_grace: float = 5.0,
        recheck_idle: float = 2.0,
        queue_ahead: int | None = 0,
        clock: Clock = time.monotonic,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        if not replicas:
            raise ValueError("a pool needs at least one replica")
        if queue_ahead is not None and queue_ahead < 0:
            raise ValueError("queue_ahead must be 0 (off), a positive count, or None (sized)")
        self.replicas = list(replicas)
        for replica in self.replicas:
            most = min(_AHEAD_MOST, _AHEAD_PER_SLOT * replica.limit.maximum)
            replica.pace.cap = most if queue_ahead is None else queue_ahead
            # Connected before the pool existed (local copies, validation's client): its
            # API was read then, and it counts as idle from now.
            replica.last_used = clock()
        self._api_name = api_name
        self._eject_after = eject_after
        self._max_probe = max_probe_interval
        self._down_deadline = down_deadline
        self._start_grace = start_grace
        self._recheck_idle = recheck_idle
        self._clock = clock
        self._message = on_message or (lambda text: log.info("%s", text))
        self._changed = anyio.Event()
        #: Jobs waiting in `acquire` for a slot, first come first served.
        self._waiters: deque[anyio.Event] = deque()
        #: Waiters woken that have not looked for their slot yet.
        self._woken = 0
        self._all_down_since: float | None = None
        self._opened: list[AsyncClient] = []
        #: The replica whose API the run uses (the first that answered).
        self.reference: Replica | None = None
        #: The run's endpoint as the rows were validated against it (the reference's,
        #: when it first answered); every replica is compared with it.
        self.validated: Endpoint | None = None
        #: Each API change seen on a replica mid-run: when, which, what, what was done.
        self.api_changes: list[dict[str, Any]] = []
        #: Per replica, the signature whose change was last said (each is said once).
        self._said: dict[str, str] = {}
        #: Every row has been taken from the input: the last ones go where they end
        #: first (`_route.choose`), and a slow replica's free slot may stay empty.
        self.tail = False

    def __repr__(self) -> str:
        return f"<ReplicaPool {self.replicas}>"

    @property
    def capacity(self) -> int:
        return sum(r.limit.maximum for r in self.replicas)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    @property
    def waiting(self) -> int:
        """Jobs waiting in `acquire` for a slot."""
        return len(self._waiters)

    # -- lifecycle --------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the clients the pool connected (call once probing has stopped)."""
        opened, self._opened = self._opened, []
        with anyio.CancelScope(shield=True):
            for client in reversed(opened):
                await client.aclose()

    def message(self, text: str) -> None:
        """Say `text` where the pool says what happens to replicas."""
        self._message(text)

    def notify(self) -> None:
        """Wake the jobs waiting for a replica (a pause ended, a replica came back)."""
        self._notify()

    async def changed(self, longest: float) -> None:
        """Wait until something changes (a slot freed, a replica came back), at most
        `longest` seconds."""
        with anyio.move_on_after(longest):
            await self._changed.wait()

    def retire(self, replica: Replica, reason: str) -> None:
        """Take `replica` out of rotation for good (it is never probed again)."""
        if replica.retired is None and replica.healthy:
            replica.stats.ejections += 1
        replica.retired = reason
        replica.refuse(reason)
        self._message(f"{reason}; its jobs go to the other replicas")
        self.notify()

    def _suspect(self, replica: Replica, now: float, why: str) -> None:
        log.debug("reading the API of %s again (%s)", replica.name, why)
        if replica.checked or replica.probing:
            replica.suspect(now)  # a check under way now is read again after it
            self._notify()

    def _eject(self, replica: Replica, now: float, error: BaseException) -> None:
        count = replica.failures_in_row
        replica.eject(now, cause_of(error))
        self._message(
            f"{replica.name} taken out of rotation after "
            f"{count} failures in a row ({type(error).__name__}); "
            "its jobs go to the other replicas, and it is probed again"
        )

    # -- waking -----------------------------------------------------------------------

    def _waiting(self) -> list[Replica]:
        """Replicas with a probe due some time, not under way."""
        return [r for r in self.replicas if r.down_until is not None and not r.probing]

    async def _wait_for_change(self, now: float, longest: float = 1.0) -> None:
        with anyio.move_on_after(self._wait_timeout(now, longest)):
            await self._changed.wait()

    def _wait_timeout(self, now: float, longest: float = 1.0) -> float:
        """Until the next pause ends or probe is due, at most `longest` seconds."""
        wakeups = [r.limit.paused_until for r in self.replicas if r.limit.paused(now) > 0]
        wakeups += [r.down_until for r in self._waiting() if r.down_until is not None]
        timeout = max(0.01, min(wakeups) - now) if wakeups else longest
        return min(timeout, longest)

    def _notify(self) -> None:
        """Something changed: every waiter looks again (and the prober)."""
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
        self._wake(len(self._waiters))

    def _hand_over(self) -> None:
        """A job ended well: only slots changed (and windows grew). Wake as many
        waiters, first come first, as there are free slots not yet promised to one
        woken earlier; waking them all had each of them look, and all but one wait
        again, for every job that ended."""
        now = self._clock()
        free = sum(
            r.limit.allowed + r.pace.depth - r.in_flight for r in self.replicas if r.free(now)
        )
        self._wake(free - self._woken)

    def _wake(self, count: int) -> None:
        for _ in range(min(count, len(self._waiters))):
            self._waiters.popleft().set()
            self._woken += 1
