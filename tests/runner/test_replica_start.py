"""Replicas that are down when a run starts, replicas of another API, and health: a
replica refused at start is brought in when it comes back; with none answering the
run waits with a message and stops resumably; a replica whose endpoint differs is
refused with what differs; a replica whose jobs all time out, or that answers only
5xx, is ejected.

Real Gradio apps (`tests/apps/gauge.py`, `recorder.py`) behind the fault proxy where a
fault is needed. Waits are on the pool's messages and the scheduler's listener.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.apps import RunningApp
from support.cli import spacerun
from support.fault_proxy import FaultProxy, Respond, Rule, Stall
from support.hub import HubServer
from support.scheduling import Timeline, gauge_fixtures, gauge_jobs, no_wait

from jobs import AppError, AsyncClient, ConnectionFailed, ServerError
from runner.run import RunOptions, run_async
from runner.scheduling import (
    AdaptiveLimit,
    AllReplicasDown,
    AttemptTimeout,
    Replica,
    ReplicaPool,
    ReplicaState,
    RetryPolicy,
    Scheduler,
    api_difference,
)
from runner.store import RecordStatus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


_gauge_apps, gauges = gauge_fixtures(2, settle=False)


def pending(name: str, url: str, *, concurrency: int = 2, probe: float = 0.2) -> Replica:
    """A replica the pool connects itself, as `spacerun run` makes them."""

    async def connect() -> AsyncClient:
        return await AsyncClient.connect(url, download_files=False)

    return Replica(
        name=name,
        connect=connect,
        limit=AdaptiveLimit(maximum=concurrency),
        probe_interval=probe,
    )


def scheduler(pool: ReplicaPool, log: Timeline, **options: Any) -> Scheduler:
    options.setdefault("endpoint", "/predict")
    options.setdefault("sleep", no_wait)
    return Scheduler(pool, on_outcome=log.on_outcome, listener=log, **options)


async def test_a_replica_refused_at_start_is_brought_in_when_it_comes_back(
    gauges: list[RunningApp],
) -> None:
    """r0 refuses connections when the run starts: the run starts on r1 and says r0 is
    down; when r0 listens again it is connected, and it gets jobs from then on."""
    log = Timeline()
    with FaultProxy(gauges[0].url) as proxy:
        await anyio.to_thread.run_sync(proxy.refuse_connections)
        pool = ReplicaPool(
            [pending("r0", proxy.url), pending("r1", gauges[1].url)], on_message=log.message
        )
        try:
            async with pool.probing(), anyio.create_task_group() as group:
                schema = await pool.open()
                assert schema.endpoint("/predict").parameters[0].name == "x"
                assert [r.state for r in pool.replicas] == [ReplicaState.PENDING, ReplicaState.UP]

                async def reopen() -> None:
                    await log.until(lambda: bool(log.starts("r1")))
                    await anyio.to_thread.run_sync(proxy.refuse_connections, False)

                group.start_soon(reopen)
                await scheduler(pool, log).run(gauge_jobs(40, 0.1))
                group.cancel_scope.cancel()
        finally:
            await pool.aclose()
    ((_, down),) = log.messages("r0 is down at start")
    assert "ConnectionFailed" in down and "probed again" in down
    ((back_at, _),) = log.messages("r0 answers now; in rotation")
    assert set(log.statuses().values()) == {RecordStatus.OK} and len(log.outcomes) == 40
    assert log.starts("r0") and min(log.starts("r0")) > back_at
    assert any(o.replica == "r0" for o in log.outcomes.values())
    assert pool.replicas[0].state is ReplicaState.UP


async def test_all_down_at_start_waits_with_a_message_then_stops_resumably(
    gauges: list[RunningApp], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every replica answers its config with 502: the run says so, waits up to the
    deadline, stops (exit status 1, `stopped_by` in the summary), and the same run
    started again once the app answers does every row."""
    with FaultProxy(gauges[0].url) as proxy:
        down = proxy.add_rule(Rule(path=r"/config$", action=Respond.error(502)))
        rows = tmp_path / "rows.csv"
        rows.write_text("x,delay\n" + "".join(f"r{i},0\n" for i in range(6)))
        overrides = [f"output.dir={tmp_path / 'run'}", "output.download_files=false"]
        options = RunOptions(
            app=proxy.url,
            endpoint="/predict",
            overrides=overrides,
            progress="plain",
            handle_signals=False,
            all_down_deadline=3,
        )
        with pytest.raises(AllReplicasDown) as stopped:
            await run_async(rows, options)
        assert proxy.counts(r"/config$", status=502) >= 2  # probed while it waited
        err = capsys.readouterr().err
        assert f"{proxy.url} is down at start (ServerError: " in err
        assert "HTTP 502" in err
        assert "no replica answered at start; waiting up to 3 s" in err
        assert stopped.value.exit_status == 1
        assert "run the same command again to resume" in str(stopped.value)
        summary = json.loads((tmp_path / "run" / "summary.json").read_text())
        assert summary["exit_status"] == 1 and "no replica answered" in summary["stopped_by"]
        assert not (tmp_path / "run" / "results.jsonl").read_text()

        proxy.remove_rule(down)
        again = await run_async(rows, options)
    assert again.exit_status == 0 and again.complete and again.this_run["ok"] == 6


async def test_a_replica_with_another_api_is_refused_with_what_differs(
    gauges: list[RunningApp], app_factory: Any, tmp_path: Path
) -> None:
    """r0 (gauge: /predict(x, delay)) gives the run its API. r1 runs another app with a
    /predict(x, n): refused at start. r2 is that other app too, down at start: when it
    answers it is refused as well, and no job ever goes to either."""
    other = app_factory("recorder", env={"RECORDER_LOG": str(tmp_path / "received.log")})
    log = Timeline()
    with FaultProxy(other.url) as proxy:
        await anyio.to_thread.run_sync(proxy.refuse_connections)
        replicas = [
            pending("r0", gauges[0].url),
            pending("r1", other.url),
            pending("r2", proxy.url),
        ]
        pool = ReplicaPool(replicas, api_name="/predict", on_message=log.message)
        try:
            async with pool.probing(), anyio.create_task_group() as group:
                await pool.open()

                async def reopen() -> None:
                    await log.until(lambda: bool(log.messages("r2 is down at start")))
                    await anyio.to_thread.run_sync(proxy.refuse_connections, False)

                group.start_soon(reopen)
                await log.until(lambda: bool(log.messages("r2 is not used")))
                await scheduler(pool, log).run(gauge_jobs(10, 0.0))
                group.cancel_scope.cancel()
        finally:
            await pool.aclose()
    expected = (
        "its API differs from that of r0, which the run uses: /predict: parameter 2 is "
        "'n' (Number, float, optional) there, 'delay' (Number, float, optional) here"
    )
    ((_, r1),) = log.messages("r1 is not used")
    ((_, r2),) = log.messages("r2 is not used")
    assert expected in r1 and expected in r2
    assert [r.state for r in replicas] == [
        ReplicaState.UP,
        ReplicaState.REFUSED,
        ReplicaState.REFUSED,
    ]
    assert {o.replica for o in log.outcomes.values()} == {"r0"}
    assert set(log.statuses().values()) == {RecordStatus.OK}
    assert not (tmp_path / "received.log").exists()  # the other app never got a job


async def test_api_difference_names_a_missing_endpoint_and_other_outputs(
    gauges: list[RunningApp], calculator_app: RunningApp
) -> None:
    async with (
        AsyncClient(gauges[0].url) as gauge,
        AsyncClient(calculator_app.url) as calculator,
    ):
        assert api_difference(gauge.schema, gauge.schema, "/predict") is None
        missing = api_difference(gauge.schema, calculator.schema, "/stats")
        assert missing is not None and missing.startswith("it has no endpoint /stats (it has:")
        other = api_difference(gauge.schema, calculator.schema, "/predict")
    assert other is not None
    assert "parameter 1 is 'num1' (Number, float, required) there" in other
    assert "it has an extra parameter 'num2'" in other
    assert "it returns Number (float), not Textbox (str)" in other


async def test_a_replica_whose_jobs_all_time_out_is_ejected(gauges: list[RunningApp]) -> None:
    """r0's event streams stall (its jobs never finish in time); after three timeouts
    in a row it is taken out of rotation, and its jobs are done on r1."""
    log = Timeline()
    with FaultProxy(gauges[0].url) as proxy:
        proxy.add_rule(Rule(path=r"queue/data$", method="GET", action=Stall(after_messages=1)))
        pool = ReplicaPool(
            [pending("r0", proxy.url, probe=30.0), pending("r1", gauges[1].url)],
            on_message=log.message,
        )
        try:
            async with pool.probing(), anyio.create_task_group() as group:
                await pool.open()
                policy = RetryPolicy(retries=3, retry_timeouts=True)
                # r1 has ~1 s of work (40 x 0.05 s, 2 at a time): it is still busy when
                # r0's first jobs time out at 0.5 s, so r0 keeps getting jobs (retries
                # and new ones) until its third timeout in a row. With fewer, a fast
                # client could finish everything on r1 first and r0 time out only twice.
                await scheduler(pool, log, timeout=0.5, policy=policy).run(gauge_jobs(40, 0.05))
                group.cancel_scope.cancel()
        finally:
            await pool.aclose()
            proxy.release_stalls()
    r0 = pool.replicas[0]
    ((_, ejected),) = log.messages("r0 taken out of rotation")
    assert "after 3 failures in a row (AttemptTimeout)" in ejected
    assert r0.stats.ejections == 1 and r0.state is ReplicaState.DOWN
    assert set(log.statuses().values()) == {RecordStatus.OK} and len(log.outcomes) == 40
    assert all(o.replica == "r1" for o in log.outcomes.values())
    timed_out = [o for o in log.outcomes.values() if o.attempts > 1]
    # Three timeouts, not three jobs: with r1 busy, a job may time out on r0 twice.
    assert sum(o.attempts - 1 for o in timed_out) >= 3
    assert all(o.causes[0].startswith("timeout") for o in timed_out)


def _offline(n: int) -> list[Replica]:
    return [
        Replica(name=f"r{i}", client=AsyncClient("http://127.0.0.1:9"), limit=AdaptiveLimit(4))
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "fault",
    [
        ServerError("HTTP 500", status_code=500),
        AttemptTimeout("no result within 1 s"),
        ConnectionFailed("refused"),
    ],
    ids=["5xx", "timeout", "refused"],
)
async def test_pool_ejects_after_5xx_timeouts_or_refusals_in_a_row(fault: Exception) -> None:
    replicas = _offline(2)
    pool = ReplicaPool(replicas, eject_after=3)
    r0 = replicas[0]

    def read_again() -> None:
        # A 5xx or a refusal may be a restart: r0 takes no job until its API is read
        # again (the probe's work; here, read and found the same). A timeout is not.
        assert r0.checked is isinstance(fault, AttemptTimeout) or not r0.healthy
        if r0.healthy:
            r0.checked_again()

    for _ in range(2):
        await pool.acquire(avoid=["r1"])
        pool.release(r0, fault)
        read_again()
    await pool.acquire(avoid=["r1"])
    pool.release(r0, AppError("gr.Error"))  # the app answered: the count starts again
    for _ in range(3):
        await pool.acquire(avoid=["r1"])
        pool.release(r0, fault)
        read_again()
    assert r0.state is ReplicaState.DOWN and r0.stats.ejections == 1
    assert {(await pool.acquire()).name for _ in range(4)} == {"r1"}


async def test_a_sleeping_space_is_woken_while_the_run_starts_without_it(
    gauges: list[RunningApp], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A URL replica answers at once; the Space is asleep (then starting, for a few
    polls of the Hub stand-in): the run starts without it, wakes it with a request,
    and sends it jobs once it runs."""
    with FaultProxy(gauges[1].url) as space_app, HubServer() as hub:
        hub.add_space(
            "bob/gauge", host=space_app.url, stages=["SLEEPING", *["APP_STARTING"] * 3, "RUNNING"]
        )
        manifest = tmp_path / "batch.yaml"
        manifest.write_text(
            "app:\n  endpoint: /predict\n  replicas:\n"
            f"    - url: {gauges[0].url}\n    - space: bob/gauge\n"
            "inputs:\n  csv: rows.csv\n"
            f"run:\n  concurrency: 2\noutput:\n  dir: {tmp_path / 'run'}\n"
            "  download_files: false\n"
        )
        (tmp_path / "rows.csv").write_text(
            "x,delay\n" + "".join(f"r{i},0.25\n" for i in range(100))
        )
        options = RunOptions(progress="plain", handle_signals=False, hub_endpoint=hub.url)
        summary = await run_async(manifest, options)
        woken = space_app.counts(r"/config$")
    err = capsys.readouterr().err
    assert summary.exit_status == 0 and summary.this_run["ok"] == 100
    assert "bob/gauge: SLEEPING" in err and "bob/gauge: RUNNING" in err
    assert "bob/gauge has not answered yet; the run goes on without it" in err
    assert "bob/gauge answers now; in rotation" in err
    assert woken >= 2  # the wake-up request, then the connection once it ran
    served = {r.name: r.ok for r in summary.replicas}
    assert served[gauges[0].url] > 0 and served["bob/gauge"] > 0, served


def test_a_replica_that_can_never_answer_stops_the_run_at_once_without_traceback(
    tmp_path: Path,
) -> None:
    """The only replica is an HTTP server that is not a Gradio app: no waiting for it,
    a message naming it, exit status 1."""
    rows = tmp_path / "rows.csv"
    rows.write_text("x\na\n")
    with HubServer() as not_gradio:
        done = spacerun(
            "run", str(rows), "--app", not_gradio.url, "--endpoint", "/predict",
            "--set", f"output.dir={tmp_path / 'run'}", "--progress", "plain",
        )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert f"{not_gradio.url} is not used: " in done.stderr
    assert "Traceback" not in done.stderr
    assert "waiting up to" not in done.stderr
