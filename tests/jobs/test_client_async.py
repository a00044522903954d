"""The async core, `jobs.AsyncClient`, against real Gradio apps."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from support.apps import RunningApp

import jobs
from jobs import AsyncClient, Status

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def status_reached(job: jobs.AsyncJob, predicate: Any) -> None:
    """Wait, on the job's own status events, until `predicate(status)` holds."""
    reached = anyio.Event()
    job.add_status_listener(lambda update: reached.set() if predicate(update) else None)
    if not predicate(job.status()):
        with anyio.fail_after(15):
            await reached.wait()


async def test_connect_and_predict(calculator_app: RunningApp) -> None:
    """`await AsyncClient.connect(...)` and `async with` both give a working client."""
    client = await AsyncClient.connect(calculator_app.url)
    try:
        assert await client.predict(4, "add", 5, api_name="/predict") == 9
    finally:
        await client.aclose()
    async with AsyncClient(calculator_app.url) as client:
        assert await client.predict(num1=6, operation="divide", num2=3) == 2


async def test_many_jobs_in_flight_without_threads(calculator_app: RunningApp) -> None:
    """Two hundred jobs at once complete with their own answers, on the event loop alone."""
    import threading

    threads_before = threading.active_count()
    async with AsyncClient(calculator_app.url) as client:
        submitted = [client.submit(i, "multiply", 2) for i in range(200)]
        assert threading.active_count() == threads_before
        results = [await job.result() for job in submitted]
    assert results == [i * 2 for i in range(200)]


async def test_async_iteration_of_generator(generator_app: RunningApp) -> None:
    """`async for` yields each generator output as it arrives."""
    async with AsyncClient(generator_app.url) as client:
        job = client.submit(n=3, delay=0.05, api_name="/count")
        seen = [value async for value in job]
        assert seen == ["0", "1", "2"]
        assert await job.result() == "2"


async def test_async_result_callback(calculator_app: RunningApp) -> None:
    """Callbacks may be coroutine functions on the async client."""
    got = anyio.Event()
    values: list[Any] = []

    async def callback(value: Any) -> None:
        values.append(value)
        got.set()

    async with AsyncClient(calculator_app.url) as client:
        job = client.submit(1, "add", 1, result_callbacks=callback)
        await job.result()
        with anyio.fail_after(10):
            await got.wait()
    assert values == [2]


async def test_cancel_touches_only_its_job(slow_app: RunningApp) -> None:
    """Each stateless job has a session of its own: cancelling one queued job of an
    endpoint leaves its running and queued siblings alone (the server would otherwise
    kill every running event of that endpoint in the session)."""
    async with AsyncClient(slow_app.url) as client:
        running = client.submit(1.0, "a", api_name="/sleep")
        await status_reached(running, lambda s: s.code is Status.PROCESSING)
        queued = client.submit(0.1, "b", api_name="/sleep")
        sibling = client.submit(0.1, "c", api_name="/sleep")
        await status_reached(queued, lambda s: s.rank is not None)
        assert running.session.hash != queued.session.hash
        assert await queued.cancel() is True
        assert await running.result() == "slept 1.0"
        assert await sibling.result() == "slept 0.1"
        with pytest.raises(jobs.JobCancelled):
            await queued.result()


async def test_shared_session_serialises_same_endpoint(counter_app: RunningApp) -> None:
    """Jobs of a stateful endpoint share the client's session and run one after another,
    so the State sees every call and a cancel stays exact."""
    async with AsyncClient(counter_app.url) as client:
        jobs_ = [client.submit(step=1, api_name="/add") for _ in range(5)]
        assert [await j.result() for j in jobs_] == [1, 2, 3, 4, 5]
        waiting = [client.submit(step=10, api_name="/add") for _ in range(3)]
        assert await waiting[2].cancel() is True  # still on the client: nothing sent
        assert [await j.result() for j in waiting[:2]] == [15, 25]
        assert waiting[2].event_id is None


async def test_closing_the_client_cancels_pending_jobs(slow_app: RunningApp) -> None:
    """Jobs still pending when the client closes end as cancelled."""
    async with AsyncClient(slow_app.url) as client:
        job = client.submit(0.5, "closing", api_name="/sleep")
    assert job.done()
    with pytest.raises(jobs.JobCancelled):
        await job.result()


async def test_job_timings(slow_app: RunningApp) -> None:
    """Queue time and run time are measured per job."""
    async with AsyncClient(slow_app.url) as client:
        job = client.submit(0.3, "timed", api_name="/sleep")
        await job.result()
    timings = job.timings
    assert timings.run_time is not None and timings.run_time >= 0.3
    assert timings.queue_time is not None and timings.queue_time >= 0


async def test_a_raising_status_listener_breaks_nothing(calculator_app: RunningApp) -> None:
    """A bug in a user's status listener is logged; the job and its neighbours finish."""

    def broken(update: jobs.StatusUpdate) -> None:
        raise RuntimeError("listener bug")

    async with AsyncClient(calculator_app.url) as client:
        job = client.submit(2, "add", 2)
        job.add_status_listener(broken)
        other = client.submit(3, "add", 3)
        assert await job.result() == 4
        assert await other.result() == 6
        assert await client.predict(1, "add", 1) == 2
