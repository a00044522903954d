"""`runner.scheduling`: jobs kept waiting in an app's queue (`queue_ahead`) and the tail's
hedges (`hedge`), as the apps see them.

What ran is read from the apps: `tests/apps/gauge.py` counts the calls it started and
the most it ran at once, `tests/apps/bench.py` lists the calls it finished (`/spans`).
These pin behaviour (what runs, what is recorded), never timings.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from support.apps import RunningApp, start_app
from support.fault_proxy import CutStream, FaultProxy, Respond, Rule
from support.scheduling import ProbingScheduler

from jobs import AsyncClient
from runner.run import RunOptions, run_async
from runner.scheduling import (
    AdaptiveLimit,
    Outcome,
    Replica,
    ReplicaPool,
    RetryPolicy,
)
from runner.store import RecordStatus

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

#: The slow replica's call: long enough that a copy elsewhere clearly ends first.
SLOW = 4.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True, slots=True)
class Sub:
    key: str
    row: int
    inputs: dict[str, Any]


@dataclass(slots=True)
class TailApps:
    #: gauge, `concurrency_limit=1`: the app's queue is ours to fill.
    gauge: RunningApp
    #: bench apps, one call at a time: 0.05 s, and SLOW s a call.
    fast: RunningApp
    slow: RunningApp


@pytest.fixture(scope="module")
def _tail_apps() -> Iterator[TailApps]:
    apps = TailApps(
        gauge=start_app("gauge", env={"GAUGE_LIMIT": "1"}),
        fast=start_app("bench", env={"BENCH_DELAY": "0.05", "BENCH_CONCURRENCY": "1"}),
        slow=start_app("bench", env={"BENCH_DELAY": str(SLOW), "BENCH_CONCURRENCY": "1"}),
    )
    yield apps
    for app in (apps.gauge, apps.fast, apps.slow):
        app.stop()


@pytest.fixture
def tail_apps(_tail_apps: TailApps) -> TailApps:
    """The apps, idle (a call of an earlier test has ended), with their counters zeroed."""

    async def settle() -> None:
        gauge = _tail_apps.gauge
        await server_until(lambda: _true(call_json(gauge, "stats"), lambda s: not s["running"]))
        await call_json(gauge, "reset")
        for app in (_tail_apps.fast, _tail_apps.slow):
            await server_until(functools.partial(_idle_bench, app))
            await call_json(app, "reset")

    anyio.run(settle)
    return _tail_apps


async def server_until(check: Callable[[], Awaitable[bool]], within: float = 30) -> None:
    """Wait for a condition on another process's counters: asking is the only way."""
    with anyio.fail_after(within):
        while not await check():  # noqa: ASYNC110 - another process: no event to await
            await anyio.sleep(0.05)


async def _true(answer: Awaitable[Any], test: Callable[[Any], bool]) -> bool:
    return test(await answer)


async def _idle_bench(app: RunningApp) -> bool:
    return not await queue_size(app) and not (await call_json(app, "spans"))["running"]


async def calls(app: RunningApp) -> int:
    """Calls a bench app finished or runs now."""
    spans = await call_json(app, "spans")
    return len(spans["spans"]) + int(spans["running"])


async def call_json(app: RunningApp, api_name: str) -> Any:
    prefix = (app.config or {}).get("api_prefix", "")
    async with httpx.AsyncClient(base_url=app.url, timeout=10, trust_env=False) as http:
        answer = (await http.post(f"{prefix}/run/{api_name}", json={"data": []})).json()
    return json.loads(answer["data"][0])


async def queue_size(app: RunningApp) -> int:
    prefix = (app.config or {}).get("api_prefix", "")
    async with httpx.AsyncClient(base_url=app.url, timeout=10, trust_env=False) as http:
        size: int = (await http.get(f"{prefix}/queue/status")).json()["queue_size"]
    return size


@contextlib.asynccontextmanager
async def replicas_at(
    apps: Sequence[RunningApp | str], concurrency: int
) -> AsyncIterator[list[Replica]]:
    async with contextlib.AsyncExitStack() as stack:
        replicas = []
        for index, app in enumerate(apps):
            url = app if isinstance(app, str) else app.url
            client = await AsyncClient.connect(url, download_files=False)
            stack.push_async_callback(client.aclose)
            limit = AdaptiveLimit(maximum=concurrency)
            replicas.append(Replica(name=f"r{index}", client=client, limit=limit))
        yield replicas


class Outcomes:
    """The run's outcome sink: one outcome per key, and waits on what was sent."""

    def __init__(self, on_sent: Callable[[], None] | None = None) -> None:
        self.by_key: dict[str, Outcome] = {}
        self.sent: list[tuple[str, str]] = []
        self._changed = anyio.Event()
        self._on_sent = on_sent

    def on_outcome(self, outcome: Outcome) -> None:
        assert outcome.submission.key not in self.by_key, "one outcome per row"
        self.by_key[outcome.submission.key] = outcome

    def attempt_started(self, key: str, replica: str) -> None:
        self.sent.append((key, replica))
        if self._on_sent is not None:
            self._on_sent()
        self._changed.set()
        self._changed = anyio.Event()

    def retrying(self, key: str, cause: str, delay: float) -> None:
        pass

    def outcome(self, outcome: Outcome) -> None:
        pass

    async def until(self, predicate: Callable[[], bool], within: float = 30) -> None:
        with anyio.fail_after(within):
            while not predicate():
                await self._changed.wait()


def _note_in_flight(seen: list[int], replica: Replica) -> None:
    seen.append(replica.in_flight)


# -- queue-ahead --------------------------------------------------------------------------


async def test_a_job_queued_ahead_is_cancelled_exactly_on_stop(tail_apps: TailApps) -> None:
    """Ctrl-C with one job running and one waiting in the app's queue: the waiting one
    is cancelled there and never runs (the app counts the calls it started)."""
    outcomes = Outcomes()
    warm = [Sub(f"w{i}", i, {"x": f"w{i}", "delay": 0.05}) for i in range(6)]
    long = [Sub(f"long{i}", 6 + i, {"x": f"long{i}", "delay": 2.0}) for i in range(2)]
    async with replicas_at([tail_apps.gauge], concurrency=1) as replicas:
        pool = ReplicaPool(replicas, queue_ahead=1)
        engine = ProbingScheduler(
            pool, on_outcome=outcomes.on_outcome, listener=outcomes, endpoint="/predict", grace=5
        )

        async def stop_once_one_waits() -> None:
            await outcomes.until(lambda: ("long1", "r0") in outcomes.sent)
            gauge = tail_apps.gauge
            await server_until(
                lambda: _true(call_json(gauge, "stats"), lambda s: s["started"] >= 7)
            )
            engine.stop()

        async with anyio.create_task_group() as group:
            group.start_soon(stop_once_one_waits)
            await engine.run([*warm, *long])
    # long1 went to the app beyond the window of 1, behind long0, and waited there.
    assert replicas[0].pace.cap == 1
    assert outcomes.by_key["long0"].status is RecordStatus.OK
    assert outcomes.by_key["long1"].status is RecordStatus.CANCELLED
    assert outcomes.by_key["long1"].attempts == 1
    await anyio.sleep(2.5)  # long enough for long1 to have run, had it not been dropped
    stats = await call_json(tail_apps.gauge, "stats")
    assert stats["started"] == 7 and stats["max_running"] == 1


async def test_queue_ahead_0_keeps_no_more_than_concurrency_on_the_app(
    tail_apps: TailApps,
) -> None:
    """With `queue_ahead: 0` the app never holds more than `concurrency` of our jobs,
    running or queued; with it on, jobs wait in the app's queue (still one running)."""
    rows = [Sub(f"j{i}", i, {"x": f"j{i}", "delay": 0.05}) for i in range(40)]
    seen: dict[int | None, int] = {}
    for ahead in (0, None):
        async with replicas_at([tail_apps.gauge], concurrency=1) as replicas:
            # Our jobs on the app (sent, not ended) each time one is sent.
            on_app = [0]
            outcomes = Outcomes(functools.partial(_note_in_flight, on_app, replicas[0]))
            pool = ReplicaPool(replicas, queue_ahead=ahead)
            await ProbingScheduler(
                pool, on_outcome=outcomes.on_outcome, listener=outcomes, endpoint="/predict"
            ).run(rows)
        assert {o.status for o in outcomes.by_key.values()} == {RecordStatus.OK}
        seen[ahead] = max(on_app)
        stats = await call_json(tail_apps.gauge, "stats")
        assert stats["max_running"] == 1 and stats["started"] == len(rows)
        await call_json(tail_apps.gauge, "reset")
    assert seen[0] == 1
    assert seen[None] > 1


# -- hedging ------------------------------------------------------------------------------


async def _tail_run(apps: TailApps, *, hedge: bool) -> tuple[dict[str, Outcome], list[Replica]]:
    outcomes = Outcomes()
    rows = [Sub(f"k{i}", i, {"x": f"k{i}"}) for i in range(12)]
    async with replicas_at([apps.fast, apps.slow], concurrency=1) as replicas:
        engine = ProbingScheduler(
            ReplicaPool(replicas),
            on_outcome=outcomes.on_outcome,
            listener=outcomes,
            endpoint="/predict",
            hedge=hedge,
        )
        await engine.run(rows)
    return outcomes.by_key, replicas


async def test_a_hedged_row_is_recorded_once_with_the_winners_result(
    tail_apps: TailApps,
) -> None:
    """The row stuck on the slow replica is copied onto the fast one when that is free:
    its one outcome is the copy's (replica, value), the slow call's cost is counted."""
    outcomes, replicas = await _tail_run(tail_apps, hedge=True)
    assert {key: o.status for key, o in outcomes.items()} == {
        f"k{i}": RecordStatus.OK for i in range(12)
    }
    assert all(o.value == o.submission.inputs["x"] for o in outcomes.values())
    (hedged,) = [o for o in outcomes.values() if o.hedged]
    assert hedged.replica == "r0"  # the fast one's copy won
    assert hedged.hedge_seconds > 0  # the slow call had started: it runs to its end
    assert replicas[0].stats.hedges == 1
    assert replicas[1].stats.hedge_seconds == pytest.approx(hedged.hedge_seconds, abs=1e-3)
    assert await calls(tail_apps.fast) == 11 + 1  # its own rows and the copy
    assert await calls(tail_apps.slow) == 1  # the original: a plain function runs on


async def test_hedge_false_sends_each_row_once(tail_apps: TailApps) -> None:
    outcomes, replicas = await _tail_run(tail_apps, hedge=False)
    assert {o.status for o in outcomes.values()} == {RecordStatus.OK}
    assert not any(o.hedged for o in outcomes.values())
    assert [o.replica for o in outcomes.values()].count("r1") == 1
    assert replicas[0].stats.hedges == replicas[1].stats.hedges == 0
    assert await calls(tail_apps.fast) + await calls(tail_apps.slow) == 12


async def _no_wait(seconds: float) -> None:
    await anyio.lowlevel.checkpoint()


async def test_hedging_with_streams_cut_records_every_row_once_with_its_result(
    tail_apps: TailApps,
) -> None:
    """Copies and originals lose their streams (the fault proxy cuts them): every row
    still ends in one outcome, ok, with its own result."""
    outcomes = Outcomes()
    rows = [Sub(f"f{i}", i, {"x": f"f{i}"}) for i in range(16)]
    cut = CutStream(after_messages=1)
    with FaultProxy(tail_apps.fast.url) as fast, FaultProxy(tail_apps.slow.url) as slow:
        # A quarter of the fast one's streams, copies among them; the slow one's join
        # fails once (its row is sent again, elsewhere).
        fast.add_rule(Rule(path=r"queue/data$", method="GET", probability=0.25, seed=7, action=cut))
        refused = slow.add_rule(
            Rule(path=r"queue/join$", method="POST", times=1, action=Respond.error(503))
        )
        async with replicas_at([fast.url, slow.url], concurrency=1) as replicas:
            engine = ProbingScheduler(
                ReplicaPool(replicas, queue_ahead=None),
                on_outcome=outcomes.on_outcome,
                listener=outcomes,
                endpoint="/predict",
                hedge=True,
                policy=RetryPolicy(retries=5),
                sleep=_no_wait,
            )
            await engine.run(rows)
        assert slow.hits(refused) == 1
    assert {key: o.status for key, o in outcomes.by_key.items()} == {
        row.key: RecordStatus.OK for row in rows
    }
    assert all(o.value == o.submission.inputs["x"] for o in outcomes.by_key.values())
    assert any(o.hedged for o in outcomes.by_key.values())
    assert any(o.attempts > 1 for o in outcomes.by_key.values())


async def test_a_run_with_hedges_and_cut_streams_records_each_key_once(
    tail_apps: TailApps, tmp_path: Path
) -> None:
    """The whole run path, hedging by default, the fast replica's streams cut now and
    then: results.jsonl holds each row's key once, ok, with its own output; the
    summary counts the copies."""
    cut = Rule(
        path=r"queue/data$",
        method="GET",
        probability=0.25,
        seed=3,
        action=CutStream(after_messages=1),
    )
    with FaultProxy(tail_apps.fast.url) as fast:
        fast.add_rule(cut)
        rows = "".join(f"    - {{x: r{i}}}\n" for i in range(12))
        manifest = tmp_path / "hedge.yaml"
        manifest.write_text(
            f"name: hedge\napp:\n  endpoint: /predict\n  replicas:\n    - url: {fast.url}\n"
            f"    - url: {tail_apps.slow.url}\ninputs:\n  rows:\n{rows}run:\n  concurrency: 1\n"
            f"  retries: 5\noutput:\n  dir: {tmp_path / 'out'}\n  download_files: false\n"
        )
        summary = await run_async(manifest, RunOptions(progress="quiet", handle_signals=False))
    lines = (tmp_path / "out" / "results.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    keys = [r["key"] for r in records]
    assert len(keys) == len(set(keys)) == 12
    assert {r["inputs"]["x"].upper(): r["status"] for r in records} == {
        f"R{i}": "ok" for i in range(12)
    }
    assert all(r["outputs"]["y"] == r["inputs"]["x"] for r in records)
    assert sum(r.hedges for r in summary.replicas) >= 1


# -- the pool's routing and sizing, offline (no server is contacted) ---------------------


def _offline(concurrency: int, runs: list[float], gap: float = 0.01) -> list[Replica]:
    replicas = []
    for index, run in enumerate(runs):
        replica = Replica(
            name=f"r{index}",
            client=AsyncClient("http://127.0.0.1:9"),  # never called: the pool only counts
            limit=AdaptiveLimit(maximum=concurrency),
        )
        replica.pace.run, replica.pace.gap = run, gap
        replicas.append(replica)
    return replicas


async def test_the_tail_leaves_a_slow_free_slot_empty_when_a_fast_one_ends_sooner() -> None:
    fast, slow = replicas = _offline(1, [0.05, 1.0])
    pool = ReplicaPool(replicas)
    assert await pool.acquire() is fast  # ends first, though both are free
    assert await pool.acquire() is slow  # while rows are left to send, every slot is used
    pool.release(fast, None)
    pool.release(slow, None)
    await pool.acquire()
    pool.tail = True  # every row taken from the input
    with anyio.move_on_after(0.3) as waited:
        await pool.acquire()  # slow is free, but waiting for fast ends sooner
    assert waited.cancelled_caught and slow.in_flight == 0
    pool.release(fast, None)
    assert await pool.acquire() is fast


async def test_queue_ahead_is_sized_from_the_gap_and_run_time_and_capped() -> None:
    near, far = replicas = _offline(2, [0.05, 0.05])
    near.pace.gap, far.pace.gap = 0.01, 0.2
    pool = ReplicaPool(replicas, queue_ahead=4)
    for _ in range(10):
        for replica in replicas:
            replica.in_flight += 1
            pool.release(replica, None, run_time=0.05, busy_seconds=0.05)
    # 1.5 x 2 slots x gap / run: 0.6 -> 1 for the near one; 24 -> the cap for the far one
    assert (near.pace.depth, far.pace.depth) == (1, 4)
    assert far.free(0.0) and far.in_flight == 0
    far.in_flight = 2 + 4
    assert not far.free(0.0)
    off = _offline(2, [0.05])
    pool = ReplicaPool(off, queue_ahead=0)
    off[0].in_flight += 1
    pool.release(off[0], None, run_time=0.05, busy_seconds=0.5)
    off[0].in_flight = 2
    assert off[0].pace.depth == 0 and not off[0].free(0.0)  # no more than concurrency


async def test_queue_ahead_turns_itself_off_where_the_app_runs_more_at_once(
    app_factory: Any,
) -> None:
    """An app whose own limit is higher than `concurrency` runs what was sent ahead at
    once: after a few such starts nothing more is sent ahead to it, and it is said."""
    roomy = app_factory("gauge")  # concurrency_limit=16
    # Calls long against the round trip: a job sent ahead is seen running beside the
    # other for most of each call, not only between two calls.
    rows = [Sub(f"j{i}", i, {"x": f"j{i}", "delay": 0.2}) for i in range(80)]
    said: list[str] = []
    outcomes = Outcomes()
    async with replicas_at([roomy], concurrency=1) as replicas:
        pool = ReplicaPool(replicas, queue_ahead=None, on_message=said.append)
        await ProbingScheduler(
            pool, on_outcome=outcomes.on_outcome, listener=outcomes, endpoint="/predict"
        ).run(rows)
    assert {o.status for o in outcomes.by_key.values()} == {RecordStatus.OK}
    assert replicas[0].pace.cap == 0 and replicas[0].pace.depth == 0
    assert any("no job is queued ahead on it any more" in text for text in said)


async def test_jobs_taken_at_once_follow_the_depth_queued_ahead_not_its_cap(
    tail_apps: TailApps,
) -> None:
    """With queue-ahead sized by itself (up to 16 per slot), the scheduler holds no more
    submissions than its slots, the depth kept ahead now, and as many again ready: not
    one per job it might some day keep ahead, each waiting for a slot."""
    rows = [Sub(f"j{i}", i, {"x": f"j{i}", "delay": 0.02}) for i in range(60)]
    held: list[tuple[int, int]] = []
    outcomes = Outcomes(on_sent=lambda: held.append((scheduler.in_flight, replicas[0].pace.depth)))
    async with replicas_at([tail_apps.gauge], concurrency=1) as replicas:
        pool = ReplicaPool(replicas, queue_ahead=None)
        scheduler = ProbingScheduler(
            pool, on_outcome=outcomes.on_outcome, listener=outcomes, endpoint="/predict"
        )
        await scheduler.run(rows)
    assert {o.status for o in outcomes.by_key.values()} == {RecordStatus.OK}
    assert replicas[0].pace.cap == 16
    # 1 slot: 2 x 1, plus the depth; a depth raised since the job was taken counts.
    most_depth = max(depth for _, depth in held)
    assert max(count for count, _ in held) <= 2 + most_depth < 2 + 16
