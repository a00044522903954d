"""Throttles: a global submission rate, and per-replica adaptive concurrency.

`RateLimiter` paces submissions evenly (one every `1/rate` seconds, with a small burst
allowance) across all replicas. `AdaptiveLimit` is a replica's concurrency window,
driven by AIMD as TCP does: every success lets the window grow by about one job per
window's worth of successes (additive increase), every sign of overload (429, a full
queue, a sleeping Space) halves it and pauses the replica for the server's Retry-After
(multiplicative decrease). AIMD is the simplest rule that provably converges to a fair
share without knowing the server's capacity; the window never exceeds the manifest's
`concurrency`, so we are never busier than asked.

Clock and sleep are injected so tests are exact.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

__all__ = ["AdaptiveLimit", "Clock", "RateLimiter", "Sleep"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class RateLimiter:
    """At most `rate` acquisitions per second over any long stretch, at most `burst` at
    once. `rate=None` means unlimited."""

    def __init__(
        self,
        rate: float | None,
        *,
        burst: int = 1,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self._interval = 0.0 if rate is None else 1.0 / rate
        self._burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._next = clock()
        self._lock = anyio.Lock()

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, burst={self._burst})"

    async def acquire(self) -> None:
        if self.rate is None:
            return
        async with self._lock:
            now = self._clock()
            # Tokens unused while idle accumulate up to `burst`, no more.
            earliest = now - self._interval * (self._burst - 1)
            slot = max(self._next, earliest)
            self._next = slot + self._interval
            if slot > now:
                await self._sleep(slot - now)


@dataclass(slots=True)
class AdaptiveLimit:
    """A replica's concurrency window between 1 and `maximum` (AIMD)."""

    maximum: int
    window: float = 0.0
    paused_until: float = 0.0

    def __post_init__(self) -> None:
        if self.maximum < 1:
            raise ValueError("concurrency must be at least 1")
        if self.window <= 0:
            self.window = float(self.maximum)

    @property
    def allowed(self) -> int:
        """Jobs that may be in flight now."""
        return max(1, min(self.maximum, int(self.window)))

    def on_success(self) -> None:
        self.window = min(float(self.maximum), self.window + 1.0 / max(1.0, self.window))

    def on_overload(self, now: float, retry_after: float | None = None) -> None:
        self.window = max(1.0, self.window / 2)
        self.paused_until = max(self.paused_until, now + (retry_after or 1.0))

    def paused(self, now: float) -> float:
        """Seconds left in the pause (0 when not paused)."""
        return max(0.0, self.paused_until - now)
