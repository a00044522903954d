"""Which failures are worth another attempt, and the tenacity policy that spaces them.

Transient (retried): connection errors, a stream lost mid-job (server died or
restarted), 5xx, 429 (after its Retry-After), a full queue, a Space still waking.
Final (not retried unless the manifest asks): the app rejected the job (`gr.Error`,
a crash in its code, a validator's 422), bad arguments. ZeroGPU failures follow their
kind: no GPU free in time, too many tasks in flight, a passing client error are retried
(the first two also slow the replica down); an aborted GPU task is retried once; a
duration over the account's maximum and a request without identity never are; the
app's own failure on the GPU worker is an app error. (A spent quota is not retried
here at all: the scheduler waits for its reset, see `_pause`.) Timeouts are retried only
when `retry_timeouts` is set. Backoff is exponential with full jitter, never shorter
than what the server asked for in Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    stop_after_attempt,
    wait_exponential_jitter,
)

from jobs import (
    AppError,
    ArgumentError,
    JobCancelled,
    JobsError,
    QueueFull,
    RateLimited,
    SpaceNotRunning,
    ZeroGpuError,
    ZeroGpuKind,
)

from ._throttle import Sleep

__all__ = ["AttemptTimeout", "RetryPolicy", "cause_of", "is_overload", "retry_after_of"]


class AttemptTimeout(JobsError):
    """One attempt ran over the manifest's `run.timeout` and was cancelled on the server."""


_GPU_OVERLOAD = frozenset({ZeroGpuKind.QUEUE_TIMEOUT.value, ZeroGpuKind.PENDING_CREDITS.value})


def is_overload(exc: BaseException) -> bool:
    """Signs that the replica wants less work for a while (slow down, do not eject)."""
    if isinstance(exc, ZeroGpuError):
        return exc.kind in _GPU_OVERLOAD
    return isinstance(exc, (RateLimited, QueueFull)) or (
        isinstance(exc, SpaceNotRunning)
        and exc.stage in ("SLEEPING", "APP_STARTING", "BUILDING", "RUNNING_BUILDING")
    )


def retry_after_of(exc: BaseException | None) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, (int, float)) else None


def cause_of(exc: BaseException) -> str:
    """A short, stable description of a failure, for the results record and grouping."""
    if isinstance(exc, AttemptTimeout):
        return f"timeout: {exc.message}"
    if isinstance(exc, JobsError):
        return f"{type(exc).__name__}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """`retries` more attempts after the first, for the failures that deserve them."""

    retries: int = 3
    retry_app_errors: bool = False
    retry_timeouts: bool = False
    initial_backoff: float = 0.5
    max_backoff: float = 60.0

    def should_retry(self, exc: BaseException) -> bool:
        if isinstance(exc, AttemptTimeout):
            return self.retry_timeouts
        if isinstance(exc, (JobCancelled, ArgumentError)):
            return False
        if isinstance(exc, ZeroGpuError) and exc.kind != ZeroGpuKind.WORKER_ERROR.value:
            return exc.transient
        if isinstance(exc, AppError):
            return self.retry_app_errors
        if isinstance(exc, JobsError):
            return exc.transient
        return False

    def _retry_state(self, state: RetryCallState) -> bool:
        exc = state.outcome.exception() if state.outcome is not None else None
        if exc is None:
            return False
        if isinstance(exc, ZeroGpuError) and exc.kind == ZeroGpuKind.TASK_ABORTED.value:
            # The worker died or the task ran past its duration: once may be bad luck,
            # twice is the input.
            return state.attempt_number < 2 and self.should_retry(exc)
        return self.should_retry(exc)

    def backoff(self, state: RetryCallState) -> float:
        wait = wait_exponential_jitter(initial=self.initial_backoff, max=self.max_backoff)
        outcome = state.outcome.exception() if state.outcome is not None else None
        return max(wait(state), retry_after_of(outcome) or 0.0)

    def retrying(
        self,
        *,
        sleep: Sleep = anyio.sleep,
        before_sleep: Callable[[RetryCallState], Any] | None = None,
    ) -> AsyncRetrying:
        return AsyncRetrying(
            stop=stop_after_attempt(self.retries + 1),
            wait=self.backoff,
            retry=self._retry_state,
            sleep=sleep,
            reraise=True,
            before_sleep=before_sleep,
        )
