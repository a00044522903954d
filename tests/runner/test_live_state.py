"""What the live page says of a run that is paused, with a replica down, costing money:
`live_state` over the run's own objects (stand-ins for the pool and the fleet), rendered
into a report of a synthetic folder; and the light writes' newest outputs."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

from support.synthetic import write_synthetic_run

from jobs import AppError
from runner.launch import ReplicaCost
from runner.run import Progress
from runner.run._live import LiveSources, live_state
from runner.run._summary import SummaryBuilder
from runner.scheduling import AccountPauses, Outcome, PauseRecord, ReplicaState
from runner.store import LivePage, RecordStatus, build_report


def test_live_page_shows_pauses_replicas_and_cost(tmp_path: Path) -> None:
    progress = Progress(mode="quiet")
    progress.start(total=100)
    progress.counts["ok"], progress.counts["error"] = 40, 10
    now = time.time()
    pauses = AccountPauses([])
    pauses.records.append(
        PauseRecord(reason="ZeroGPU quota", replicas=("a",), started_at=now - 5, until=now + 600)
    )
    pauses.records.append(  # over: not shown
        PauseRecord(reason="ZeroGPU quota", replicas=("a",), started_at=now - 99, until=now - 60)
    )
    down = SimpleNamespace(
        name="b", state=ReplicaState.DOWN, in_flight=0, reason="connection refused",
        limit=SimpleNamespace(paused=lambda now: 0.0),
    )  # fmt: skip
    held = SimpleNamespace(
        name="a", state=ReplicaState.UP, in_flight=0, reason=None,
        limit=SimpleNamespace(paused=lambda now: 600.0),
    )  # fmt: skip
    fleet = SimpleNamespace(
        costs=lambda: {"a": ReplicaCost(hardware="a10g", up_seconds=900.0, cost_usd=0.25)},
        spent=lambda: 0.25,
        burn_rate=lambda: 0.001,
    )
    summary = SummaryBuilder()
    for key in ("k1", "k2"):
        summary.add(
            Outcome(
                submission=SimpleNamespace(key=key, row=1),
                status=RecordStatus.ERROR,
                error=AppError("Refused: row 17"),
            )
        )
    pool = SimpleNamespace(replicas=[held, down])
    sources = LiveSources(progress, pool, pauses, fleet, summary)  # type: ignore[arg-type]
    state = live_state(sources, refresh=5)
    assert state["failures"] == [{"cause": "AppError: Refused: row N", "count": 2}]
    assert state["done"] == 50 and state["percent"] == 50.0 and state["failed"] == 10
    assert state["cost"] == "$0.25" and state["cost_projected"] is not None
    assert len(state["pauses"]) == 1 and state["pauses"][0].startswith("paused: ZeroGPU quota")
    assert [r["state"] for r in state["replicas"]] == ["up", "down"]
    assert state["replicas"][0]["note"].startswith("paused for 0:10:00")
    assert state["replicas"][1]["note"] == "connection refused"

    run_dir = write_synthetic_run(tmp_path / "run", 60)
    html = build_report(run_dir, live=state).read_text(encoding="utf-8")
    assert 'http-equiv="refresh" content="5"' in html
    assert "paused: ZeroGPU quota until" in html and "$0.25" in html
    assert 'class="state-down">down' in html and "connection refused" in html
    assert "AppError: Refused: row N" in html


def test_light_write_shows_the_newest_outputs_from_the_tail(tmp_path: Path) -> None:
    run_dir = write_synthetic_run(tmp_path / "run", 60)
    page = LivePage(run_dir)
    live = {"refresh": 5}
    assert page.write(live, full=False)  # the first write is always full
    results = run_dir / "results.jsonl"
    last = json.loads(results.read_bytes().splitlines()[-1])
    record = {**last, "key": "k-newest", "row": 999, "outputs": {"text": "THE NEWEST ONE"}}
    with open(results, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    assert not page.write({"refresh": 5, "done": 61}, full=False)
    html = page.target.read_text(encoding="utf-8")
    newest = html[html.index('id="newest"') :]
    assert newest.index("THE NEWEST ONE") < newest.index("</section>")
    assert '<div class="n" data-live="done">61</div>' in html
