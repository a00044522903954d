"""`runner.scheduling`: the scheduler and the replica pool: fan-out, caps, rate, back-off, ejection,
retries, timeouts and cancellation, against real Gradio apps (faults from the proxy).

What the apps saw is read from the apps themselves: `tests/apps/gauge.py` counts the
calls it ran, the most it ran at once and when each started; `slow.py` tells which
tagged calls started and completed. Waits are on events (scheduler listener, pool
messages, proxy counters) or on those server counters, each with a deadline.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support.apps import RunningApp
from support.cli import SpacerunProcess
from support.fault_proxy import CutStream, FaultProxy, Respond, Rule
from support.scheduling import (
    ProbingScheduler,
    Sub,
    Timeline,
    call_json,
    gauge_fixtures,
    gauge_jobs,
    no_wait,
    server_until,
)

from jobs import AppError, AsyncClient, StreamLost
from runner.run import RunHandle, RunOptions, run_async
from runner.scheduling import (
    AdaptiveLimit,
    AllReplicasDown,
    AttemptTimeout,
    RateLimiter,
    Replica,
    ReplicaPool,
    RetryPolicy,
    Scheduler,
)
from runner.store import RecordStatus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- helpers ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def replicas_at(
    urls: list[str], *, concurrency: int = 2, probe_interval: float = 2.0
) -> AsyncIterator[list[Replica]]:
    """Connected replicas r0, r1, ... for `urls`, closed on the way out."""
    async with contextlib.AsyncExitStack() as stack:
        replicas = []
        for index, url in enumerate(urls):
            client = await AsyncClient.connect(url, download_files=False)
            stack.push_async_callback(client.aclose)
            replicas.append(
                Replica(
                    name=f"r{index}",
                    client=client,
                    limit=AdaptiveLimit(maximum=concurrency),
                    probe_interval=probe_interval,
                )
            )
        yield replicas


def scheduler(pool: ReplicaPool, recorder: Timeline, **options: Any) -> Scheduler:
    options.setdefault("endpoint", "/predict")
    options.setdefault("sleep", no_wait)
    return ProbingScheduler(pool, on_outcome=recorder.on_outcome, listener=recorder, **options)


async def queue_size(app: RunningApp) -> int:
    prefix = (app.config or {}).get("api_prefix", "")
    async with httpx.AsyncClient(base_url=app.url, timeout=10, trust_env=False) as http:
        size: int = (await http.get(f"{prefix}/queue/status")).json()["queue_size"]
    return size


# -- gauge apps: three, shared by the module, fresh counters per test -------------------


_gauge_apps, gauges = gauge_fixtures(3, settle=True)


# -- ReplicaPool on its own (no server is contacted) ------------------------------------


def _offline_replicas(n: int, concurrency: int) -> list[Replica]:
    # A client that is never connected: the pool only counts, it does not call.
    return [
        Replica(
            name=f"r{i}",
            client=AsyncClient("http://127.0.0.1:9"),
            limit=AdaptiveLimit(maximum=concurrency),
        )
        for i in range(n)
    ]


async def test_pool_hands_out_the_least_loaded_replica_and_caps_each() -> None:
    replicas = _offline_replicas(3, concurrency=2)
    pool = ReplicaPool(replicas)
    pool.note_queue(replicas[0], 3)  # someone else's jobs wait on r0
    taken = [(await pool.acquire()).name for _ in range(6)]
    # r0 looks busiest until r1 and r2 are full; ties go to the first listed.
    assert taken == ["r1", "r2", "r1", "r2", "r0", "r0"]
    assert [r.in_flight for r in replicas] == [2, 2, 2]
    with anyio.move_on_after(0.2) as waited:
        await pool.acquire()  # all full: waits
    assert waited.cancelled_caught
    pool.release(replicas[1], None)
    assert (await pool.acquire()).name == "r1"


async def test_pool_avoids_replicas_where_the_job_failed_unless_no_other_is_free() -> None:
    replicas = _offline_replicas(2, concurrency=1)
    pool = ReplicaPool(replicas)
    assert (await pool.acquire(avoid=["r0"])).name == "r1"
    assert (await pool.acquire(avoid=["r0", "r1"])).name == "r0"


async def test_pool_ejects_a_replica_after_faults_in_a_row_not_after_app_errors() -> None:
    from jobs import ConnectionFailed

    replicas = _offline_replicas(2, concurrency=4)
    recorder = Timeline()
    pool = ReplicaPool(replicas, eject_after=3, on_message=recorder.message)
    r0 = replicas[0]
    for _ in range(5):
        await pool.acquire(avoid=["r1"])
        pool.release(r0, AppError("gr.Error"))  # the app answered: the replica is fine
    assert r0.healthy
    for _ in range(2):
        await pool.acquire(avoid=["r1"])
        pool.release(r0, ConnectionFailed("refused"))
        # It may have restarted as another app: no job until its API is read again (the
        # probe's work; here, read and found the same).
        assert r0.healthy and not r0.free(0.0)
        r0.checked_again()
    await pool.acquire(avoid=["r1"])
    pool.release(r0, None)  # a success resets the count
    for attempt in range(3):
        await pool.acquire(avoid=["r1"])
        pool.release(r0, ConnectionFailed("refused"))
        if attempt < 2:
            r0.checked_again()
    assert not r0.healthy
    assert r0.stats.ejections == 1
    assert recorder.messages("r0 taken out of rotation")
    assert {(await pool.acquire()).name for _ in range(4)} == {"r1"}


# -- fan-out, caps, rate -----------------------------------------------------------------


async def test_fans_out_across_three_replicas(gauges: list[RunningApp]) -> None:
    """Every replica gets work, every result is right, every job ran exactly once."""
    recorder = Timeline()
    async with replicas_at([a.url for a in gauges], concurrency=2) as replicas:
        await scheduler(ReplicaPool(replicas), recorder).run(gauge_jobs(30, 0.05))
        assert set(recorder.statuses().values()) == {RecordStatus.OK}
        assert len(recorder.outcomes) == 30
        assert all(o.value == key and o.attempts == 1 for key, o in recorder.outcomes.items())
        by_replica = {r.name: r.stats.ok for r in replicas}
    assert all(n >= 5 for n in by_replica.values()), by_replica
    served = [(await call_json(app, "stats"))["finished"] for app in gauges]
    assert served == [by_replica["r0"], by_replica["r1"], by_replica["r2"]]
    assert sum(served) == 30


async def test_per_replica_concurrency_is_never_exceeded(gauges: list[RunningApp]) -> None:
    """The apps allow 16 at once; the manifest says 3; the apps never see a 4th."""
    recorder = Timeline()
    async with replicas_at([a.url for a in gauges[:2]], concurrency=3) as replicas:
        await scheduler(ReplicaPool(replicas), recorder).run(gauge_jobs(24, 0.15))
    assert set(recorder.statuses().values()) == {RecordStatus.OK}
    seen = [(await call_json(app, "stats"))["max_running"] for app in gauges[:2]]
    assert seen == [3, 3]  # as busy as allowed, and no busier


async def test_global_rate_is_held_counted_on_an_injected_clock(gauges: list[RunningApp]) -> None:
    """At 5/s, the i-th submission leaves at i/5 s on the limiter's clock, across replicas."""
    virtual = [0.0]

    async def advance(seconds: float) -> None:
        virtual[0] += seconds
        await anyio.lowlevel.checkpoint()

    sent_at: list[float] = []

    class Clocked(Timeline):
        def attempt_started(self, key: str, replica: str) -> None:
            sent_at.append(virtual[0])
            super().attempt_started(key, replica)

    recorder = Clocked()
    rate = RateLimiter(5, clock=lambda: virtual[0], sleep=advance)
    async with replicas_at([a.url for a in gauges], concurrency=4) as replicas:
        await scheduler(ReplicaPool(replicas), recorder, rate=rate).run(gauge_jobs(12, 0.0))
    assert len(recorder.outcomes) == 12
    assert sorted(sent_at) == pytest.approx([i / 5 for i in range(12)])


async def test_global_rate_is_held_on_the_servers(gauges: list[RunningApp]) -> None:
    """N jobs at rate R over three replicas start no faster than (N-1)/R on the servers."""
    n, rate = 9, 20.0
    recorder = Timeline()
    async with replicas_at([a.url for a in gauges], concurrency=4) as replicas:
        await scheduler(ReplicaPool(replicas), recorder, rate=RateLimiter(rate)).run(
            gauge_jobs(n, 0.0)
        )
    assert set(recorder.statuses().values()) == {RecordStatus.OK}
    # CLOCK_MONOTONIC is one clock for every process on the machine.
    starts = sorted([t for app in gauges for t in (await call_json(app, "stats"))["starts"]])
    assert len(starts) == n
    # The pace is set when jobs leave; network jitter may bunch two arrivals a little.
    assert starts[-1] - starts[0] >= (n - 1) / rate - 0.05


# -- overload, faults, ejection ------------------------------------------------------------


async def test_a_429_storm_is_backed_off_and_recovered(gauges: list[RunningApp]) -> None:
    """429 + Retry-After halves the replica's window and pauses it; then all succeed and
    the window grows back to the manifest's concurrency."""
    recorder = Timeline()
    with FaultProxy(gauges[0].url) as proxy:
        async with replicas_at([proxy.url], concurrency=4) as replicas:
            storm = proxy.add_rule(
                Rule(
                    path=r"queue/join$",
                    method="POST",
                    times=3,
                    action=Respond.too_many_requests(retry_after=1),
                )
            )
            await scheduler(ReplicaPool(replicas, on_message=recorder.message), recorder).run(
                gauge_jobs(24, 0.02)
            )
            (replica,) = replicas
            assert proxy.hits(storm) == 3
            assert proxy.counts(r"queue/join$", status=429) == 3
    assert set(recorder.statuses().values()) == {RecordStatus.OK}
    retried = [o for o in recorder.outcomes.values() if o.attempts > 1]
    assert len(retried) == 3
    assert all(o.causes[0].startswith("RateLimited") for o in retried)
    slowed = recorder.messages("is overloaded")
    assert [text.rsplit("to ", 1)[1] for _, text in slowed] == [
        "2 in flight",
        "1 in flight",
        "1 in flight",
    ]
    assert replica.stats.overloads == 3
    # Paused for Retry-After: nothing left for the replica within 1 s of the first 429.
    first_429 = slowed[0][0]
    later = [t for t in recorder.starts() if t > first_429]
    assert later and min(later) - first_429 >= 1.0 - 0.05
    # Recovered: the window is back at the manifest's 4.
    assert replica.limit.allowed == 4


async def test_a_replica_killed_mid_batch_has_its_jobs_finished_elsewhere(
    gauges: list[RunningApp],
) -> None:
    recorder = Timeline()
    victim = gauges[2]
    async with replicas_at([a.url for a in gauges], concurrency=2) as replicas:
        pool = ReplicaPool(replicas, on_message=recorder.message)
        run = scheduler(pool, recorder)

        def victim_busy() -> bool:
            # r2 has finished some jobs and has just taken another one.
            done = sum(1 for _, kind, _, d in recorder.events if kind == "outcome" and d == "r2")
            return done >= 2 and recorder.events[-1][1] == "start" and replicas[2].in_flight == 2

        async def kill_when_busy() -> None:
            await recorder.until(victim_busy)
            await anyio.to_thread.run_sync(victim.kill)

        async with anyio.create_task_group() as group:
            group.start_soon(kill_when_busy)
            await run.run(gauge_jobs(40, 0.3))
        killed = replicas[2]
    assert recorder.statuses() == {f"j{i}": RecordStatus.OK for i in range(40)}
    moved = [o for o in recorder.outcomes.values() if o.attempts > 1]
    assert len(moved) >= 2  # the two in flight on r2 when it died
    assert all(o.replica in ("r0", "r1") for o in moved)
    assert all("StreamLost" in o.causes[0] or "ConnectionFailed" in o.causes[0] for o in moved)
    assert killed.stats.ejections == 1
    assert recorder.messages("r2 taken out of rotation")


async def test_a_stream_cut_mid_job_is_retried_and_succeeds(gauges: list[RunningApp]) -> None:
    recorder = Timeline()
    with FaultProxy(gauges[0].url) as proxy:
        cut = proxy.add_rule(
            Rule(path=r"queue/data$", method="GET", times=1, action=CutStream(after_messages=2))
        )
        async with replicas_at([proxy.url], concurrency=2) as replicas:
            await scheduler(ReplicaPool(replicas), recorder).run(gauge_jobs(4, 0.3))
        assert proxy.hits(cut) == 1
    assert set(recorder.statuses().values()) == {RecordStatus.OK}
    (retried,) = [o for o in recorder.outcomes.values() if o.attempts > 1]
    assert retried.attempts == 2
    assert retried.causes[0].startswith(StreamLost.__name__)
    assert retried.value == retried.submission.key


async def test_a_refusing_replica_is_ejected_then_put_back_after_probing(
    gauges: list[RunningApp],
) -> None:
    """Connection refused: r0 leaves the rotation and r1 does the work; when r0 listens
    again the probe brings it back and it gets jobs again."""
    recorder = Timeline()
    with FaultProxy(gauges[0].url) as proxy:
        async with replicas_at(
            [proxy.url, gauges[1].url], concurrency=2, probe_interval=0.2
        ) as replicas:
            await anyio.to_thread.run_sync(proxy.refuse_connections)
            pool = ReplicaPool(replicas, on_message=recorder.message)

            async def reopen_after_ejection() -> None:
                await recorder.until(lambda: bool(recorder.messages("r0 taken out")))
                await anyio.to_thread.run_sync(proxy.refuse_connections, False)

            async with anyio.create_task_group() as group:
                group.start_soon(reopen_after_ejection)
                await scheduler(pool, recorder).run(gauge_jobs(30, 0.2))
            r0 = replicas[0]
    assert set(recorder.statuses().values()) == {RecordStatus.OK}
    assert r0.stats.ejections == 1
    ((back_at, _),) = recorder.messages("r0 answers again; back in rotation")
    assert recorder.messages("r0 taken out")[0][0] < back_at
    assert [t for t in recorder.starts("r0") if t > back_at], "r0 got work again"
    assert any(o.replica == "r0" for o in recorder.outcomes.values())


async def test_a_replica_that_comes_back_at_another_url_is_moved_there(
    gauges: list[RunningApp],
) -> None:
    """r0 stops answering at its URL (a Ray actor whose node died); its jobs finish on
    r1. Its revive says it answers at another URL now (the actor restarted elsewhere):
    the pool moves r0 there, and r0's later jobs are served at the new address."""
    recorder = Timeline()
    moved_to = gauges[2]
    with FaultProxy(gauges[0].url) as proxy:
        async with replicas_at(
            [proxy.url, gauges[1].url], concurrency=2, probe_interval=0.2
        ) as replicas:
            await anyio.to_thread.run_sync(proxy.refuse_connections)
            revived: list[str] = []

            async def revive() -> AsyncClient | None:
                if revived:
                    return None  # it stays where it moved to
                revived.append(moved_to.url)
                return await AsyncClient.connect(moved_to.url, download_files=False)

            replicas[0].revive = revive
            pool = ReplicaPool(replicas, on_message=recorder.message)
            try:
                await scheduler(pool, recorder).run(gauge_jobs(30, 0.2))
            finally:
                await pool.aclose()  # the client at the new URL is the pool's
            r0 = replicas[0]
        new_url = r0.client.url
        served_at_new = (await call_json(moved_to, "stats"))["started"]
    assert recorder.statuses() == {f"j{i}": RecordStatus.OK for i in range(30)}
    assert revived == [moved_to.url] and new_url.rstrip("/") == moved_to.url.rstrip("/")
    ((moved_at, _),) = recorder.messages(f"r0 moved to {new_url}")
    ((back_at, _),) = recorder.messages("r0 answers again; back in rotation")
    assert recorder.messages("r0 taken out")[0][0] < moved_at < back_at
    after = [o for o in recorder.outcomes.values() if o.replica == "r0"]
    assert after and served_at_new == len(after)  # every r0 job after the move ran there
    assert r0.healthy and r0.stats.ejections == 1


async def test_all_replicas_down_waits_with_a_message_then_fails_after_the_deadline(
    gauges: list[RunningApp],
) -> None:
    recorder = Timeline()
    with FaultProxy(gauges[0].url) as proxy:
        async with replicas_at([proxy.url], concurrency=2) as replicas:
            await anyio.to_thread.run_sync(proxy.refuse_connections)
            pool = ReplicaPool(
                replicas, eject_after=2, down_deadline=1.0, on_message=recorder.message
            )
            started = time.monotonic()
            with pytest.raises(AllReplicasDown, match="no replica answered for 1 s"):
                await scheduler(pool, recorder).run(gauge_jobs(6, 0.0))
            elapsed = time.monotonic() - started
    ((waiting_at, text),) = recorder.messages("all 1 replicas are down")
    assert "waiting up to 1 s" in text
    assert elapsed >= 1.0
    assert time.monotonic() - waiting_at < 10  # no retries burnt for minutes
    # Those taken got their outcome, none ok; the rest were not taken (they run on resume).
    assert 1 <= len(recorder.outcomes) <= 6
    assert set(recorder.statuses().values()) == {RecordStatus.CANCELLED}
    assert any(isinstance(o.error, AllReplicasDown) for o in recorder.outcomes.values())


# -- app errors and timeouts ---------------------------------------------------------------


async def _calculate(app_url: str, recorder: Timeline, **options: Any) -> FaultProxy:
    rows = [
        Sub("ok", 0, {"num1": 6, "operation": "divide", "num2": 3}),
        Sub("zero", 1, {"num1": 1, "operation": "divide", "num2": 0}),
    ]
    proxy = FaultProxy(app_url).start()  # only to count the joins that reach the app
    async with replicas_at([proxy.url], concurrency=2) as replicas:
        await scheduler(ReplicaPool(replicas), recorder, **options).run(rows)
    return proxy


async def test_an_app_error_is_a_failure_without_retries(calculator_app: RunningApp) -> None:
    recorder = Timeline()
    proxy = await _calculate(calculator_app.url, recorder, policy=RetryPolicy(retries=3))
    try:
        assert proxy.counts(r"queue/join$", method="POST") == 2  # one per row
    finally:
        proxy.stop()
    ok, zero = recorder.outcomes["ok"], recorder.outcomes["zero"]
    assert (ok.status, ok.value) == (RecordStatus.OK, 2)
    assert zero.status is RecordStatus.ERROR
    assert zero.attempts == 1
    assert isinstance(zero.error, AppError)
    assert zero.causes == (f"AppError: {zero.error.message}",)
    assert "Cannot divide by zero" in zero.causes[0]


async def test_an_app_error_is_retried_when_the_manifest_asks(calculator_app: RunningApp) -> None:
    recorder = Timeline()
    proxy = await _calculate(
        calculator_app.url, recorder, policy=RetryPolicy(retries=2, retry_app_errors=True)
    )
    try:
        assert proxy.counts(r"queue/join$", method="POST") == 1 + 3
    finally:
        proxy.stop()
    zero = recorder.outcomes["zero"]
    assert zero.status is RecordStatus.ERROR
    assert zero.attempts == 3
    assert len(zero.causes) == 3
    assert all("Cannot divide by zero" in cause for cause in zero.causes)


async def test_a_job_over_the_timeout_is_cancelled_on_the_server(slow_app: RunningApp) -> None:
    """/slow_gen would take 6 s; at 0.8 s it is cancelled: the app stops it early."""
    recorder = Timeline()
    async with replicas_at([slow_app.url], concurrency=1) as replicas:
        run = scheduler(ReplicaPool(replicas), recorder, endpoint="/slow_gen", timeout=0.8)
        await run.run([Sub("long", 0, {"n": 20, "tag": "long"})])
    outcome = recorder.outcomes["long"]
    assert outcome.status is RecordStatus.TIMEOUT
    assert isinstance(outcome.error, AttemptTimeout)
    assert outcome.attempts == 1
    assert outcome.causes[0].startswith("timeout: no result within 0.8 s")

    async def stopped() -> bool:
        return bool((await call_json(slow_app, "calls"))["slow_gen_running"] == 0)

    await server_until(stopped)
    calls = await call_json(slow_app, "calls")
    assert "long" not in calls["slow_gen_completed"]
    assert 1 <= calls["slow_gen_steps"]["long"] < 20


async def test_a_timeout_is_retried_when_the_manifest_asks(slow_app: RunningApp) -> None:
    recorder = Timeline()
    with FaultProxy(slow_app.url) as proxy:
        async with replicas_at([proxy.url], concurrency=1) as replicas:
            run = scheduler(
                ReplicaPool(replicas),
                recorder,
                endpoint="/slow_gen",
                timeout=0.6,
                policy=RetryPolicy(retries=1, retry_timeouts=True),
            )
            await run.run([Sub("long", 0, {"n": 20, "tag": "long"})])
        assert proxy.counts(r"queue/join$", method="POST") == 2
    outcome = recorder.outcomes["long"]
    assert outcome.status is RecordStatus.TIMEOUT
    assert outcome.attempts == 2
    assert [c.split(":")[0] for c in outcome.causes] == ["timeout", "timeout"]


# -- stopping: from code, Ctrl-C, a second Ctrl-C -------------------------------------------


async def test_stop_cancels_queued_jobs_on_the_server_and_lets_running_ones_finish(
    slow_app: RunningApp,
) -> None:
    """The scheduler's stop(): 1 running + 1 queued in the app + 2 not sent yet.

    (Two in flight, not three: the app's queue holds two, and three joins that all
    arrive before the first starts would overflow it.)"""
    recorder = Timeline()
    rows = [Sub(f"s{i}", i, {"seconds": 1.0, "tag": f"s{i}"}) for i in range(4)]
    async with replicas_at([slow_app.url], concurrency=2) as replicas:
        run = scheduler(ReplicaPool(replicas), recorder, endpoint="/sleep", grace=20)

        async def stop_when_queued() -> None:
            await server_until(lambda: _one_running_one_queued(slow_app))
            run.stop()

        async with anyio.create_task_group() as group:
            group.start_soon(stop_when_queued)
            await run.run(rows)
    calls = await call_json(slow_app, "calls")
    (ran,) = calls["sleep_started"]  # only the running one ever started
    assert calls["sleep_completed"] == {ran: 1}  # and it finished within the grace
    statuses = recorder.statuses()
    assert statuses.pop(ran) is RecordStatus.OK
    assert set(statuses.values()) == {RecordStatus.CANCELLED}
    assert len(statuses) == 3
    sent = [o for o in recorder.outcomes.values() if o.attempts]
    assert len(sent) == 2  # the two that waited on spacerun were never sent


async def _one_running_one_queued(app: RunningApp) -> bool:
    calls = await call_json(app, "calls")
    return calls["sleep_running"] == 1 and await queue_size(app) == 1


def _manifest(tmp_path: Path, app: RunningApp, seconds: float, grace: str) -> Path:
    rows = "\n".join(f"    - {{seconds: {seconds}, tag: r{i}}}" for i in range(4))
    path = tmp_path / "sleep.yaml"
    path.write_text(f"""\
name: ctrl-c
app:
  endpoint: /sleep
  replicas:
    - url: {app.url}
inputs:
  rows:
{rows}
run:
  concurrency: 2
  retries: 0
  grace: {grace}
output:
  dir: {tmp_path / "out"}
  download_files: false
""")
    return path


def _results(tmp_path: Path) -> dict[str, dict[str, Any]]:
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]  # every line whole: nothing torn
    return {r["inputs"]["tag"]: r for r in records}


async def test_ctrl_c_cancels_queued_jobs_on_the_server_and_says_how_to_resume(
    slow_app: RunningApp, tmp_path: Path
) -> None:
    spacerun = SpacerunProcess(_manifest(tmp_path, slow_app, seconds=1.5, grace="20s"))
    try:
        await server_until(lambda: _one_running_one_queued(slow_app), within=60)
        spacerun.interrupt()
        code = await anyio.to_thread.run_sync(spacerun.wait)
    finally:
        spacerun.stop()
    output = spacerun.output()
    assert code == 130, output
    assert "interrupted: cancelling queued jobs" in output
    assert f"to resume: spacerun run {tmp_path / 'sleep.yaml'}" in output
    calls = await call_json(slow_app, "calls")
    (ran,) = calls["sleep_started"]  # the app ran one job: the queued ones were cancelled
    assert calls["sleep_completed"] == {ran: 1}  # the running one finished in the grace
    results = _results(tmp_path)
    assert results.pop(ran)["status"] == "ok"
    assert {r["status"] for r in results.values()} == {"cancelled"}
    assert len(results) == 1  # the two never sent leave no record: they run on resume
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["interrupted"] is True
    assert summary["exit_status"] == 130


async def test_a_second_ctrl_c_stops_at_once(slow_app: RunningApp, tmp_path: Path) -> None:
    spacerun = SpacerunProcess(_manifest(tmp_path, slow_app, seconds=8, grace="60s"))
    try:
        await server_until(lambda: _one_running_one_queued(slow_app), within=60)
        spacerun.interrupt()
        await anyio.to_thread.run_sync(spacerun.wait_line, "interrupted: cancelling")
        second = time.monotonic()
        spacerun.interrupt()
        code = await anyio.to_thread.run_sync(spacerun.wait)
        stopped_after = time.monotonic() - second
    finally:
        spacerun.stop()
    assert code == 130, spacerun.output()
    assert stopped_after < 5  # not the 8 s job, not the 60 s grace
    calls = await call_json(slow_app, "calls")
    assert calls["sleep_completed"] == {}  # the running job was still running
    results = _results(tmp_path)  # every line parses: nothing half written
    assert all(r["status"] == "cancelled" for r in results.values())


async def test_run_handle_stop_from_code(slow_app: RunningApp, tmp_path: Path) -> None:
    """`RunHandle.stop()` does what the first Ctrl-C does, for a batch run from Python."""
    handle = RunHandle()
    manifest = _manifest(tmp_path, slow_app, seconds=1.0, grace="20s")
    summary: dict[str, Any] = {}

    async def run() -> None:
        options = RunOptions(progress="quiet", handle_signals=False)
        summary.update((await run_async(manifest, options, handle=handle)).to_dict())

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        await server_until(lambda: _one_running_one_queued(slow_app), within=60)
        handle.stop()
    assert summary["exit_status"] == 130
    assert summary["resume_command"].startswith("spacerun run ")
    calls = await call_json(slow_app, "calls")
    (ran,) = calls["sleep_started"]
    assert calls["sleep_completed"] == {ran: 1}
    results = _results(tmp_path)
    assert results.pop(ran)["status"] == "ok"
    assert {r["status"] for r in results.values()} == {"cancelled"}
