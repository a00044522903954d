"""A copy that answers but makes no progress is restarted through the Hub: its jobs go
to the other copy meanwhile, and it is put back once it runs again. The stuck copy is a
real Gradio app behind a fault proxy that holds every job's event stream; the Hub is the
stand-in."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.fault_proxy import FaultProxy, Rule, Stall
from support.hub import HubServer

from runner.run import RunOptions, run

TOKEN = "hf_alice_token_stuck"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with HubServer() as server:
        server.add_user("alice", token=TOKEN)
        yield server


@pytest.mark.parametrize(("stuck", "query"), [("restart", ""), ("factory_reboot", "factory=true")])
def test_a_stuck_copy_is_restarted_once_and_the_batch_finishes(
    app_factory: Any,
    hub: HubServer,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    stuck: str,
    query: str,
) -> None:
    """Two paid copies; every job on the first is held (its stream stalls after the
    first message) while its `/config` answers. After `run.stuck_after` (3 s) without a
    finished job it is restarted through the Hub, once (a factory reboot when its
    `stuck:` asks for one); the restart clears the fault (a fresh container), it takes
    rows again, and every row ends ok."""
    stuck_app, steady_app = app_factory.many(["zerogpu"] * 2, env={"ZEROGPU_TASK_SECONDS": "0.2"})
    with FaultProxy(stuck_app.url) as proxy:
        proxy.add_rule(Rule(path=r"queue/data$", method="GET", action=Stall(after_messages=1)))
        hub.add_space("bob/gpu-app", host=steady_app.url)
        hosts = {"alice/gpu-app": proxy.url, "alice/gpu-app-2": steady_app.url}
        hub.duplicate_host = lambda space_id: hosts[space_id]

        def fresh_container_after_restart() -> None:
            # A restart on the Hub replaces the container: the fault is gone with it.
            deadline = time.monotonic() + 120
            while not hub.calls("POST", "/restart") and time.monotonic() < deadline:
                time.sleep(0.05)
            proxy.clear_rules()
            proxy.release_stalls()

        watcher = threading.Thread(target=fresh_container_after_restart, daemon=True)
        watcher.start()
        # Rows enough that the other copy is still busy when this one is back.
        lines = [f"  - {{prompt: row {i}}}" for i in range(80)]
        path = tmp_path / "stuck.yaml"
        path.write_text(
            "app:\n"
            "  endpoint: /generate\n"
            "  replicas:\n"
            "    - duplicate: bob/gpu-app\n"
            "      hardware: t4-small\n"
            "      count: 2\n"
            f"      stuck: {stuck}\n"
            "inputs:\n"
            "  rows:\n" + "\n".join(lines) + "\n"
            "run:\n"
            "  concurrency: 2\n"
            "  stuck_after: 3s\n"
        )
        summary = run(
            path, RunOptions(hub_endpoint=hub.url, progress="plain", handle_signals=False)
        )
        watcher.join(timeout=10)
    assert summary.exit_status == 0 and summary.this_run["ok"] == 80
    restarts = hub.calls("POST", "/restart")
    assert [(r.path, r.query) for r in restarts] == [("/api/spaces/alice/gpu-app/restart", query)]
    err = capfd.readouterr().err
    assert "duplicate:gpu-app is stuck: no job finished for" in err
    assert "duplicate:gpu-app restarted" in err
    restarted = next(r for r in summary.replicas if r.name == "duplicate:gpu-app")
    assert restarted.ok > 0  # back in rotation after the restart


def test_a_stuck_local_copy_is_killed_and_started_again(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """One local copy of an app whose first process wedges (every job hangs while
    `/config` answers): after 3 s without a finished job it is killed and started again,
    once; its jobs, given up there, are retried once it is back (the new process works)
    and every row ends ok."""
    app = Path(__file__).resolve().parents[1] / "apps" / "stuck_once.py"
    lines = [f"  - {{prompt: row {i}}}" for i in range(20)]
    path = tmp_path / "local.yaml"
    path.write_text(
        "app:\n"
        "  endpoint: /generate\n"
        "  replicas:\n"
        f"    - local: {app}\n"
        f"      env: {{STUCK_MARKER: {tmp_path / 'wedged'}}}\n"
        "inputs:\n"
        "  rows:\n" + "\n".join(lines) + "\n"
        "run:\n"
        "  concurrency: 2\n"
        "  stuck_after: 3s\n"
    )
    summary = run(path, RunOptions(progress="plain", handle_signals=False))
    assert summary.exit_status == 0 and summary.this_run["ok"] == 20
    err = capfd.readouterr().err
    stuck = [line for line in err.splitlines() if " is stuck: no job finished for " in line]
    assert len(stuck) == 1 and stuck[0].startswith("local-1 is stuck"), err
    assert "killing stuck_once.py local-1 and starting it again" in err
    assert "local-1 restarted" in err
    (copy,) = summary.replicas
    assert copy.ok == 20  # every row, by the new process
