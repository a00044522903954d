"""`runner.scheduling` throttles and retries: the global rate, AIMD windows, which failures
are retried and how long between attempts. Clock and sleep are injected: exact, instant."""

from __future__ import annotations

import anyio
import pytest

from jobs import (
    AppError,
    ArgumentError,
    ConnectionFailed,
    InputRejected,
    JobCancelled,
    ProtocolError,
    QueueFull,
    RateLimited,
    ServerError,
    SpaceNotRunning,
    StreamLost,
)
from runner.scheduling import (
    AdaptiveLimit,
    AttemptTimeout,
    RateLimiter,
    RetryPolicy,
    cause_of,
    is_overload,
    retry_after_of,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class FakeTime:
    """A clock that moves only when someone sleeps on it."""

    def __init__(self, start: float = 100.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await anyio.lowlevel.checkpoint()


# -- RateLimiter ---------------------------------------------------------------------


async def test_rate_limiter_spaces_acquisitions_one_interval_apart() -> None:
    """At 10/s, back-to-back acquisitions happen at 0, 0.1, 0.2, ... seconds."""
    time = FakeTime()
    limiter = RateLimiter(10, clock=time.clock, sleep=time.sleep)
    moments = []
    for _ in range(6):
        await limiter.acquire()
        moments.append(time.now - 100.0)
    assert moments == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])


async def test_rate_limiter_holds_the_rate_for_concurrent_callers() -> None:
    """Twenty tasks at once still get their tokens 1/rate apart: N in (N-1)/rate seconds."""
    time = FakeTime()
    limiter = RateLimiter(4, clock=time.clock, sleep=time.sleep)
    moments: list[float] = []

    async def take() -> None:
        await limiter.acquire()
        moments.append(time.now - 100.0)

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(take)
    assert sorted(moments) == pytest.approx([i / 4 for i in range(20)])
    assert max(moments) == pytest.approx((20 - 1) / 4)


async def test_rate_limiter_burst_is_capped_after_idling() -> None:
    """Idle time earns at most `burst` immediate tokens, then the pace resumes."""
    time = FakeTime()
    limiter = RateLimiter(10, burst=3, clock=time.clock, sleep=time.sleep)
    time.now += 60  # a minute idle
    start = time.now
    moments = []
    for _ in range(6):
        await limiter.acquire()
        moments.append(round(time.now - start, 6))
    assert moments == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2, 0.3])


async def test_rate_limiter_without_rate_never_sleeps() -> None:
    time = FakeTime()
    limiter = RateLimiter(None, clock=time.clock, sleep=time.sleep)
    for _ in range(100):
        await limiter.acquire()
    assert time.sleeps == []


def test_rate_limiter_rejects_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(0)


# -- AdaptiveLimit (AIMD) ---------------------------------------------------------------


def test_adaptive_limit_starts_at_its_maximum() -> None:
    limit = AdaptiveLimit(maximum=8)
    assert limit.allowed == 8
    assert limit.paused(now=0.0) == 0


def test_overload_halves_the_window_and_pauses_for_retry_after() -> None:
    limit = AdaptiveLimit(maximum=8)
    limit.on_overload(now=50.0, retry_after=3)
    assert limit.allowed == 4
    assert limit.paused(now=50.0) == pytest.approx(3)
    assert limit.paused(now=52.0) == pytest.approx(1)
    assert limit.paused(now=53.5) == 0
    limit.on_overload(now=60.0)  # no Retry-After: a one-second pause
    assert limit.allowed == 2
    assert limit.paused(now=60.0) == pytest.approx(1)


def test_overload_never_goes_below_one_job() -> None:
    limit = AdaptiveLimit(maximum=4)
    for _ in range(10):
        limit.on_overload(now=0.0)
    assert limit.allowed == 1


def test_successes_grow_the_window_back_additively_up_to_the_maximum() -> None:
    """From 1, about one more job per window's worth of successes (1 + 2 + 3 to reach 4)."""
    limit = AdaptiveLimit(maximum=4)
    for _ in range(3):
        limit.on_overload(now=0.0)
    assert limit.allowed == 1
    seen = []
    for _ in range(12):
        limit.on_success()
        seen.append(limit.allowed)
    assert seen[0] == 2  # one success at window 1
    assert seen == sorted(seen)  # only grows while all is well
    # About w successes per step at window w: 2 + 3 more to go from 2 to 4, not 1 each.
    assert 3 <= seen.index(3) + 1 <= 4, seen
    assert 6 <= seen.index(4) + 1 <= 8, seen
    assert max(seen) == 4  # and never above the manifest's concurrency


def test_adaptive_limit_needs_a_positive_maximum() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        AdaptiveLimit(maximum=0)


# -- which failures are retried -----------------------------------------------------------

TRANSIENT = [
    ConnectionFailed("refused"),
    StreamLost("stream ended"),
    ServerError("bad gateway", status_code=502),
    QueueFull("queue full", status_code=503),
    RateLimited("slow down", retry_after=2),
    SpaceNotRunning("asleep", stage="SLEEPING"),
]
FINAL = [
    AppError("gr.Error", app_message="Cannot divide by zero"),
    InputRejected("bad input", problems={"x": "too long"}),
    ArgumentError("no such parameter"),
    JobCancelled("cancelled"),
    ProtocolError("what is this"),
    SpaceNotRunning("broken", stage="RUNTIME_ERROR"),
    AttemptTimeout("no result within 1 s"),
    ValueError("a bug, not a failure of the app"),
]


@pytest.mark.parametrize("error", TRANSIENT, ids=lambda e: type(e).__name__)
def test_transient_failures_are_retried(error: Exception) -> None:
    assert RetryPolicy().should_retry(error)


@pytest.mark.parametrize("error", FINAL, ids=lambda e: f"{type(e).__name__}")
def test_final_failures_are_not_retried_by_default(error: Exception) -> None:
    assert not RetryPolicy().should_retry(error)


def test_app_errors_are_retried_when_the_manifest_asks() -> None:
    policy = RetryPolicy(retry_app_errors=True)
    assert policy.should_retry(AppError("gr.Error"))
    assert policy.should_retry(InputRejected("422"))
    assert not policy.should_retry(AttemptTimeout("slow"))


def test_timeouts_are_retried_when_the_manifest_asks() -> None:
    policy = RetryPolicy(retry_timeouts=True)
    assert policy.should_retry(AttemptTimeout("slow"))
    assert not policy.should_retry(AppError("gr.Error"))


def test_overload_signs_slow_a_replica_down_other_faults_do_not() -> None:
    assert is_overload(RateLimited("429"))
    assert is_overload(QueueFull("503"))
    assert is_overload(SpaceNotRunning("zz", stage="SLEEPING"))
    assert not is_overload(ServerError("502", status_code=502))
    assert not is_overload(ConnectionFailed("refused"))
    assert not is_overload(SpaceNotRunning("paused", stage="PAUSED"))


def test_retry_after_is_read_from_the_error() -> None:
    assert retry_after_of(RateLimited("429", retry_after=7)) == 7.0
    assert retry_after_of(ServerError("503", retry_after=2.5)) == 2.5
    assert retry_after_of(ConnectionFailed("refused")) is None
    assert retry_after_of(None) is None


def test_cause_of_is_short_and_names_the_kind() -> None:
    assert cause_of(AttemptTimeout("no result within 2 s")) == "timeout: no result within 2 s"
    assert cause_of(AppError("the app failed: boom")) == "AppError: the app failed: boom"
    assert cause_of(ValueError("oops")) == "ValueError: oops"


# -- the tenacity policy ----------------------------------------------------------------


class Flaky:
    """Raises the given errors in turn, then returns "done"; counts its calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


async def _run(policy: RetryPolicy, work: Flaky, time: FakeTime) -> str:
    async for attempt in policy.retrying(sleep=time.sleep):
        with attempt:
            return work()
    raise AssertionError("unreachable")  # pragma: no cover


async def test_transient_failures_are_retried_until_success() -> None:
    time = FakeTime()
    work = Flaky(ConnectionFailed("refused"), StreamLost("cut"))
    assert await _run(RetryPolicy(retries=3), work, time) == "done"
    assert work.calls == 3
    assert len(time.sleeps) == 2


async def test_gives_up_after_the_retries_and_raises_the_last_error() -> None:
    time = FakeTime()
    last = ServerError("still down", status_code=502)
    work = Flaky(
        ServerError("down", status_code=502),
        ServerError("down", status_code=502),
        last,
        ConnectionFailed("never reached"),
    )
    with pytest.raises(ServerError) as caught:
        await _run(RetryPolicy(retries=2), work, time)
    assert caught.value is last
    assert work.calls == 3  # 1 + 2 retries


async def test_an_app_error_is_not_retried() -> None:
    time = FakeTime()
    work = Flaky(AppError("gr.Error"))
    with pytest.raises(AppError):
        await _run(RetryPolicy(retries=5), work, time)
    assert work.calls == 1
    assert time.sleeps == []


async def test_backoff_grows_exponentially_with_jitter_under_a_cap() -> None:
    time = FakeTime()
    work = Flaky(*[ConnectionFailed("refused") for _ in range(6)])
    policy = RetryPolicy(retries=6, initial_backoff=1.0, max_backoff=10.0)
    assert await _run(policy, work, time) == "done"
    # wait_exponential_jitter: initial * 2**n plus up to 1 s of jitter, capped.
    lower = [1, 2, 4, 8, 10, 10]
    for slept, low in zip(time.sleeps, lower, strict=True):
        assert low <= slept <= min(low + 1, 10)


async def test_backoff_is_never_shorter_than_retry_after() -> None:
    time = FakeTime()
    work = Flaky(RateLimited("429", retry_after=7), QueueFull("503", retry_after=3))
    policy = RetryPolicy(retries=3, initial_backoff=0.1, max_backoff=60)
    assert await _run(policy, work, time) == "done"
    assert time.sleeps[0] >= 7
    assert time.sleeps[1] >= 3
