"""Batches against Hugging Face as it really fails: a spent ZeroGPU quota, each ZeroGPU
failure, a Space that crashes mid-batch, paid duplicates paused at the end and brought
back by the next run, and a budget. The ZeroGPU side is a real Gradio app raising the
`spaces` package's exact errors (`tests/apps/zerogpu.py`); the Hub is the stand-in."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.apps import RunningApp
from support.cli import spacerun
from support.fault_proxy import FaultProxy, Respond, Rule
from support.hub import HubServer

from runner.errors import ExitStatus
from runner.run import RunOptions, run

TOKEN = "hf_alice_token_zerogpu"


def write_manifest(path: Path, app: str, rows: list[str], run_keys: str = "") -> Path:
    lines = [f"  - {{prompt: {json.dumps(r)}}}" for r in rows]
    path.write_text(
        "app:\n"
        "  endpoint: /generate\n"
        f"{app}"
        "inputs:\n"
        "  rows:\n" + "\n".join(lines) + "\n"
        "run:\n"
        "  concurrency: 2\n"
        f"{run_keys}"
    )
    return path


def app_calls(app: RunningApp) -> dict[str, Any]:
    with httpx.Client(base_url=app.url, timeout=10, trust_env=False) as http:
        prefix = "/gradio_api" if http.get("/gradio_api/info").status_code == 200 else ""
        answer = http.post(f"{prefix}/run/calls", json={"data": []}).json()
    return dict(json.loads(answer["data"][0]))


def results(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with HubServer() as server:
        server.add_user("alice", token=TOKEN)
        yield server


def test_spent_quota_pauses_and_every_row_finishes(app_factory: Any, tmp_path: Path) -> None:
    """30 rows, a quota of 10 runs, a reset 3 s after it runs out: 30 ok, 0 failed, with
    no retries allowed at all, and the pause shown in --progress json."""
    app = app_factory("zerogpu", env={"ZEROGPU_QUOTA_RUNS": "10", "ZEROGPU_RESET_SECONDS": "3"})
    manifest = write_manifest(
        tmp_path / "quota.yaml",
        f"  replicas: [{{url: {app.url}}}]\n",
        [f"prompt {i}" for i in range(30)],
        "  retries: 0\n",
    )
    run_dir = tmp_path / "run"
    done = spacerun(
        "run", str(manifest), "--set", f"output.dir={run_dir}", "--progress", "json", timeout=240
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]
    paused = [e for e in events if e.get("event") == "progress" and e.get("paused")]
    assert paused, done.stderr
    assert paused[0]["paused"].startswith("paused: ZeroGPU quota until ")
    assert any(
        e.get("event") == "message" and str(e.get("text")).startswith("paused: ZeroGPU quota")
        for e in events
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["this_run"]["ok"] == 30 and summary["this_run"]["error"] == 0
    assert [p["reason"] for p in summary["pauses"]] == ["ZeroGPU quota"]
    records = results(run_dir)
    assert len(records) == 30 and {r["status"] for r in records} == {"ok"}
    assert any(r["causes"] and "QuotaExceeded" in r["causes"][0] for r in records)
    state = app_calls(app)
    assert state["ok"] == 30 and state["refused"] >= 1  # the quota really ran out


def test_a_spent_zerogpu_quota_does_not_pause_the_paid_copy(
    app_factory: Any, hub: HubServer, tmp_path: Path
) -> None:
    """The public ZeroGPU Space and a paid T4 copy of it: when the token's quota runs out
    (after 3 calls, reset in 20 s) only the ZeroGPU Space pauses; the copy keeps taking
    rows and the batch ends before the reset (no row ran on ZeroGPU after it)."""
    zerogpu = app_factory(
        "zerogpu",
        env={
            "ZEROGPU_QUOTA_RUNS": "3",
            "ZEROGPU_RESET_SECONDS": "20",
            "ZEROGPU_TASK_SECONDS": "0.2",
        },
    )
    paid = app_factory("zerogpu", env={"ZEROGPU_TASK_SECONDS": "0.2"})  # no quota on a T4
    hub.add_space("bob/gpu-app", host=zerogpu.url, hardware="zero-a10g",
                  requested_hardware="zero-a10g")  # fmt: skip
    hub.duplicate_host = lambda space_id: paid.url
    manifest = write_manifest(
        tmp_path / "spill.yaml",
        "  replicas:\n"
        "    - space: bob/gpu-app\n"
        "    - duplicate: bob/gpu-app\n"
        "      hardware: t4-small\n",
        [f"row {i}" for i in range(40)],
        "  retries: 0\n",
    )
    summary = run(
        manifest, RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False)
    )
    assert summary.exit_status == ExitStatus.OK and summary.this_run["ok"] == 40
    assert [(p["reason"], p["replicas"]) for p in summary.pauses] == [
        ("ZeroGPU quota", ["bob/gpu-app"])
    ]
    on_zerogpu, on_copy = app_calls(zerogpu), app_calls(paid)
    assert on_zerogpu["ok"] == 3 and on_zerogpu["refused"] >= 1
    assert on_copy["ok"] == 37
    assert hub.spaces["alice/gpu-app"].stages == ["PAUSED"]


def test_each_zerogpu_failure_is_handled_as_it_means(
    app_factory: Any, hub: HubServer, tmp_path: Path
) -> None:
    """Quota and runs limit wait; no GPU in time, too many credits, a client hiccup and
    one aborted task are retried; an illegal duration, a second abort, the app's own
    failure and a request without identity fail the row at once."""
    app = app_factory("zerogpu")
    hub.add_space("bob/gpu-app", host=app.url, hardware="zero-a10g")
    user = hub.users[TOKEN]
    user.zero_gpu.current = 0
    user.zero_gpu.resets_at = datetime.now(timezone.utc) + timedelta(seconds=2)
    rows = {
        "plain": ("ok", 1),
        "quota": ("ok", 2),
        "runs_limit": ("ok", 2),
        "queue_timeout": ("ok", 2),
        "pending_credits": ("ok", 2),
        "client_error": ("ok", 2),
        "task_aborted": ("ok", 2),
        "task_aborted:2": ("error", 2),
        "illegal_duration:always": ("error", 1),
        "worker_error:always": ("error", 1),
        "no_identity:always": ("error", 1),
    }
    manifest = write_manifest(
        tmp_path / "kinds.yaml", "  replicas: [{space: bob/gpu-app}]\n", list(rows)
    )
    summary = run(
        manifest, RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False)
    )
    got = {
        r["inputs"]["prompt"]: (r["status"], r["attempts"]) for r in results(Path(summary.run_dir))
    }
    assert got == rows
    errors = {r["inputs"]["prompt"]: r["error_type"] for r in results(Path(summary.run_dir))}
    assert errors["no_identity:always"] == "ZeroGpuError"
    causes = {r["inputs"]["prompt"]: r["causes"] for r in results(Path(summary.run_dir))}
    assert causes["runs_limit"][0].startswith("QuotaExceeded: ")
    # A ZeroGPU Space and a token: the quota was read before the first job.
    assert hub.calls("GET", "/zero-gpu/quota")
    assert summary.exit_status == ExitStatus.FAILED


def test_crashed_space_is_ejected_and_its_rows_finish_elsewhere(
    app_factory: Any, hub: HubServer, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A Space whose runtime turns RUNTIME_ERROR mid-batch (its proxy answers 503) is
    taken out with the stage named; every row ends ok on the other."""
    app = app_factory("zerogpu", env={"ZEROGPU_TASK_SECONDS": "0.2"})
    with FaultProxy(app.url) as proxy:
        hub.add_space("bob/crashy", host=proxy.url)
        hub.add_space("bob/steady", host=app.url)
        manifest = write_manifest(
            tmp_path / "crash.yaml",
            "  replicas: [{space: bob/crashy}, {space: bob/steady}]\n",
            [f"row {i}" for i in range(20)],
        )
        out: dict[str, Any] = {}
        batch = threading.Thread(
            target=lambda: out.update(
                summary=run(
                    manifest,
                    RunOptions(hub_endpoint=hub.url, progress="plain", handle_signals=False),
                )
            )
        )
        batch.start()
        proxy.wait_for("queue/join", 2, timeout=120)
        hub.set_stage("bob/crashy", "RUNTIME_ERROR")
        proxy.add_rule(Rule(path=".*", action=Respond.error(503, "Service Unavailable")))
        batch.join(timeout=240)
    summary = out["summary"]
    assert summary.exit_status == ExitStatus.OK and summary.this_run["ok"] == 20
    crashy = next(r for r in summary.replicas if r.name == "bob/crashy")
    steady = next(r for r in summary.replicas if r.name == "bob/steady")
    assert crashy.ejections == 1 and steady.ok > crashy.ok
    assert "bob/crashy is RUNTIME_ERROR: the app crashed" in capfd.readouterr().err


def duplicate_manifest(path: Path, run_keys: str = "", rows: int = 4) -> Path:
    return write_manifest(
        path,
        "  replicas:\n    - duplicate: bob/gpu-app\n      hardware: h100\n      concurrency: 1\n",
        [f"row {i}" for i in range(rows)],
        run_keys,
    )


def test_paid_duplicates_are_paused_at_the_end_and_restarted_next_run(
    app_factory: Any, hub: HubServer, tmp_path: Path
) -> None:
    """The copy on paid hardware is paused when the run ends; the next run restarts it,
    waits for it and uses it; the summary gives its hardware, time up and cost."""
    app = app_factory("zerogpu")
    hub.add_space("bob/gpu-app", host=app.url)
    hub.duplicate_host = lambda space_id: app.url
    manifest = duplicate_manifest(tmp_path / "fleet.yaml")
    options = RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False)
    first = run(manifest, options)
    assert first.exit_status == ExitStatus.OK
    assert hub.spaces["alice/gpu-app"].stages == ["PAUSED"]
    (copy,) = first.replicas
    assert (copy.hardware, copy.after) == ("h100", "paused")
    assert copy.up_seconds is not None and copy.cost_usd is not None and copy.cost_usd > 0
    assert first.cost_usd == copy.cost_usd

    second = run(duplicate_manifest(tmp_path / "fleet.yaml", rows=6), options)
    assert second.exit_status == ExitStatus.OK and second.this_run["ok"] == 2
    assert len(hub.calls("POST", "/restart")) == 1
    assert len(hub.calls("POST", "/pause")) == 2
    assert hub.spaces["alice/gpu-app"].stages == ["PAUSED"]


def test_interrupted_run_still_pauses_its_paid_copy(
    app_factory: Any, hub: HubServer, tmp_path: Path
) -> None:
    """Stopped from code mid-batch (what Ctrl-C does): the paid copy is paused all the same."""
    from runner.run import RunHandle

    app = app_factory("zerogpu", env={"ZEROGPU_TASK_SECONDS": "0.3"})
    with FaultProxy(app.url) as proxy:
        hub.add_space("bob/gpu-app", host=app.url)
        hub.duplicate_host = lambda space_id: proxy.url
        handle = RunHandle()
        options = RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False)
        manifest = duplicate_manifest(tmp_path / "stop.yaml", "  grace: 1s\n", rows=30)
        out: dict[str, Any] = {}
        batch = threading.Thread(
            target=lambda: out.update(summary=run(manifest, options, handle=handle))
        )
        batch.start()
        proxy.wait_for("queue/join", 2, timeout=120)
        handle.stop()
        batch.join(timeout=120)
    summary = out["summary"]
    assert summary.exit_status == ExitStatus.INTERRUPTED and summary.remaining
    assert hub.spaces["alice/gpu-app"].stages == ["PAUSED"]
    assert summary.replicas[0].after == "paused"


def test_budget_stops_the_run_before_it_is_passed(
    app_factory: Any, hub: HubServer, tmp_path: Path
) -> None:
    """An H100 copy and a $0.02 budget: the run stops itself, resumably, under budget,
    and the copy is paused; a larger budget then finishes the batch."""
    app = app_factory("zerogpu", env={"ZEROGPU_TASK_SECONDS": "0.3"})
    hub.add_space("bob/gpu-app", host=app.url)
    hub.duplicate_host = lambda space_id: app.url
    options = RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False)
    rows = 30
    manifest = duplicate_manifest(tmp_path / "budget.yaml", "  grace: 1s\n  budget: $0.02\n", rows)
    stopped = run(manifest, options)
    assert stopped.exit_status == ExitStatus.INTERRUPTED
    assert stopped.halted_by is not None and stopped.halted_by.startswith("budget:")
    assert stopped.cost_usd is not None and stopped.cost_usd <= 0.02
    assert stopped.remaining and stopped.resume_command
    assert hub.spaces["alice/gpu-app"].stages == ["PAUSED"]

    manifest = duplicate_manifest(tmp_path / "budget.yaml", "  budget: $5\n", rows)
    finished = run(manifest, options)
    assert finished.exit_status == ExitStatus.OK and finished.complete


def test_hub_rate_limit_is_waited_for_with_the_ratelimit_header(hub: HubServer) -> None:
    """A 429 from the Hub carrying only `RateLimit: "api";r=0;t=55` gives retry_after 55."""
    import anyio

    from jobs import RateLimited, space_runtime

    hub.add_space("bob/app")
    hub.rate_limit(1, reset=55)

    async def read() -> None:
        with pytest.raises(RateLimited) as info:
            await space_runtime("bob/app", token=TOKEN, endpoint=hub.url)
        assert info.value.retry_after == 55.0
        # Once the window passes the Hub answers again; its RateLimit header (r>0) is
        # no reason to wait.
        assert (await space_runtime("bob/app", token=TOKEN, endpoint=hub.url)).stage == "RUNNING"

    anyio.run(read)


def test_readme_sample_manifest_validates(
    calculator_app: RunningApp, hub: HubServer, tmp_path: Path
) -> None:
    """The README's Hugging Face sample is a valid manifest; against a stand-in for the
    Hub whose gradio/calculator is the local calculator, every row fits the app."""
    import anyio

    from runner.manifest import load_manifest
    from runner.run import validate_manifest

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    text = readme[readme.index("## Running against Hugging Face") :]
    block = text[text.index("```yaml\n") + 8 : text.index("```\n", text.index("```yaml"))]
    path = tmp_path / "hf.yaml"
    path.write_text(block)
    hub.add_space("gradio/calculator", host=calculator_app.url)
    manifest = load_manifest(path, environ={"HF_TOKEN": TOKEN})
    assert manifest.run.budget == 2.0 and manifest.run.max_wait == 3600
    report = anyio.run(
        lambda: validate_manifest(manifest, on_message=lambda _: None, hub_endpoint=hub.url)
    )
    assert report.ok and report.submissions == 2
    assert not hub.calls("POST", "/duplicate")  # validating creates nothing
