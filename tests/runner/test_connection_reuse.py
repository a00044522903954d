"""Connections: a batch reuses a warm pool the size of its concurrency, and a cancelled
or timed-out job leaves no connection behind.

Counted by the fault proxy in front of a real app: every TCP connection the client
opened to it (`connections_accepted`), those open now, and the requests it is still
serving (an event stream a client holds counts until it is read to its end or closed).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.apps import RunningApp
from support.fault_proxy import FaultProxy
from support.scheduling import ProbingScheduler

from jobs import AsyncClient, AsyncJob, Status
from runner.run import RunOptions, run_async
from runner.scheduling import AdaptiveLimit, Outcome, Replica, ReplicaPool
from runner.store import RecordStatus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

CONCURRENCY = 8


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _manifest(tmp_path: Path, url: str, rows: int, queue_ahead: int = 0) -> Path:
    (tmp_path / "rows.csv").write_text("x\n" + "".join(f"row {i}\n" for i in range(rows)))
    path = tmp_path / "batch.yaml"
    path.write_text(f"""\
name: reuse
app:
  endpoint: /predict
  replicas:
    - url: {url}
inputs:
  csv: {tmp_path / "rows.csv"}
run:
  concurrency: {CONCURRENCY}
  queue_ahead: {queue_ahead}
  rate: 10000/s
  retries: 2
output:
  dir: {tmp_path / "out"}
""")
    return path


@pytest.mark.parametrize("queue_ahead", [0, 4])
async def test_a_300_row_batch_opens_no_more_connections_than_it_has_jobs_out_and_4(
    app_factory: Any, tmp_path: Path, queue_ahead: int
) -> None:
    """The whole `spacerun run` path: validation, joins, streams, results on disk. Jobs
    out at once are `concurrency` running plus up to `queue_ahead` waiting in the app's
    queue; connections are reused across the 300 rows, never one per row."""
    app = app_factory("bench", env={"BENCH_DELAY": "0.01", "BENCH_CONCURRENCY": str(CONCURRENCY)})
    with FaultProxy(app.url) as proxy:
        options = RunOptions(progress="off", handle_signals=False)
        summary = await run_async(_manifest(tmp_path, proxy.url, 300, queue_ahead), options)
        assert summary.this_run["ok"] == 300, summary
        assert proxy.counts(r"queue/join$", method="POST") == 300
        assert proxy.connections_accepted <= CONCURRENCY + queue_ahead + 4
        assert proxy.open_connections == 0  # the run closed its pool when it ended


async def test_a_cancelled_and_a_timed_out_job_leave_no_connection_behind(
    slow_app: RunningApp,
) -> None:
    """/slow_gen timed out by the scheduler (so cancelled on the server while running),
    then a /sleep job cancelled while it waits in the app's queue. Afterwards the proxy
    serves no request (no stream left open), and more jobs reuse the pool."""
    outcomes: list[Outcome] = []
    with FaultProxy(slow_app.url) as proxy:
        async with AsyncClient(proxy.url, download_files=False) as client:
            pool = ReplicaPool([Replica(name="r", client=client, limit=AdaptiveLimit(maximum=2))])
            scheduler = ProbingScheduler(
                pool, on_outcome=outcomes.append, endpoint="/slow_gen", timeout=0.8
            )
            await scheduler.run([_Sub("long", {"n": 20, "tag": "long"})])
            assert [o.status for o in outcomes] == [RecordStatus.TIMEOUT]

            running = client.submit(seconds=1.0, tag="running", api_name="/sleep")
            await _until(running, Status.PROCESSING)
            queued = client.submit(seconds=1.0, tag="queued", api_name="/sleep")
            await _until(queued, Status.IN_QUEUE)
            assert await queued.cancel()
            assert await running.result() == "slept 1.0"
            assert queued.status().code is Status.CANCELLED

            await anyio.to_thread.run_sync(proxy.wait_until_idle)
            opened = proxy.connections_accepted
            for i in range(10):
                await client.predict(seconds=0.0, tag=f"after{i}", api_name="/sleep")
            assert proxy.connections_accepted == opened  # warm connections were reused
            assert proxy.open_connections <= 2 + 4
    calls = await _calls(slow_app)
    assert "queued" not in calls["sleep_started"]  # the cancel reached the app
    assert calls["slow_gen_running"] == 0


@dataclass(frozen=True, slots=True)
class _Sub:
    key: str
    inputs: dict[str, Any]
    row: int = 0


async def _until(job: AsyncJob, code: Status) -> None:
    reached = anyio.Event()
    job.add_status_listener(lambda update: reached.set() if update.code is code else None)
    with anyio.fail_after(20):
        await reached.wait()


async def _calls(app: RunningApp) -> dict[str, Any]:
    async with AsyncClient(app.url) as client:
        report: dict[str, Any] = json.loads(await client.predict(api_name="/calls"))
    return report
