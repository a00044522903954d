"""`run.notify`: a local webhook receiver gets exactly the messages of a run that pauses
(a spent ZeroGPU quota), spikes in failures and ends; a webhook that fails (answers 500,
or nobody listens) is logged and does not disturb the run; no URL is written anywhere."""

from __future__ import annotations

import json
import logging
import socket
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from support.background import RunInThread
from support.webhooks import WebhookReceiver

from runner.errors import ManifestError
from runner.manifest import NotifySpec, manifest_from_data
from runner.run import RunOptions, run
from runner.run._notify import Notifier
from runner.run._summary import SummaryBuilder
from runner.run._webhook import Notification
from runner.scheduling import Outcome
from runner.store import RecordStatus

pytestmark = pytest.mark.timeout(240)

SECRET = "T0SECRET/B0SECRET/xoxoSECRETPATH"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/{SECRET}/nobody"


def test_pause_spike_and_end_are_told_once_each(
    app_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    """One row at a time: 5 ok use up the quota (a pause of ~3 s follows, past
    pause_after), 5 rows fail (a spike at 3 of the last 5, once), 4 more are ok. Each
    working webhook gets "paused", "failures", "end" in that order and nothing else."""
    app = app_factory("zerogpu", env={"ZEROGPU_QUOTA_RUNS": "5", "ZEROGPU_RESET_SECONDS": "3"})
    prompts = [f"p{i}" for i in range(6)]
    prompts += [f"illegal_duration:{90 + i}" for i in range(5)]  # distinct rows, each fails
    prompts += [f"q{i}" for i in range(4)]
    with WebhookReceiver(fail_paths={f"/{SECRET}/broken"}) as hooks:
        monkeypatch.setenv("W29_HOOK", hooks.url(f"/{SECRET}/generic"))
        manifest = tmp_path / "notify.yaml"
        manifest.write_text(
            "name: notify\n"
            f"app: {{endpoint: /generate, replicas: [{{url: {app.url}}}]}}\n"
            f"inputs: {{rows: {json.dumps([{'prompt': p} for p in prompts])}}}\n"
            "run:\n"
            "  concurrency: 1\n"
            "  retries: 0\n"
            "  notify:\n"
            "    webhooks:\n"
            '      - "${W29_HOOK}"\n'
            f"      - {{url: {hooks.url(f'/{SECRET}/slack')}, format: slack}}\n"
            f"      - {hooks.url(f'/{SECRET}/broken')}\n"
            f"      - {closed_port_url()}\n"
            "    failure_share: 0.6\n"
            "    failure_window: 5\n"
            "    pause_after: 1s\n"
            f"output: {{dir: {tmp_path / 'run'}}}\n",
            encoding="utf-8",
        )
        with caplog.at_level(logging.INFO):
            summary = run(manifest, RunOptions(progress="quiet", handle_signals=False))
        generic = hooks.bodies(f"/{SECRET}/generic")
        slack = hooks.bodies(f"/{SECRET}/slack")
        broken = hooks.bodies(f"/{SECRET}/broken")

    # The run is undisturbed by the webhooks that fail.
    assert summary.this_run["ok"] == 10 and summary.this_run["error"] == 5
    assert [p["reason"] for p in summary.pauses] == ["ZeroGPU quota"]

    assert [b["event"] for b in generic] == ["paused", "failures", "end"]
    paused, failures, end = generic
    assert "ZeroGPU quota" in paused["text"]
    assert "3 of the last 5 rows failed (60%)" in failures["text"]
    assert end["data"]["this_run"]["ok"] == 10 and end["data"]["this_run"]["error"] == 5
    assert "10 ok, 5 failed" in end["text"]
    assert "resume with:" in end["text"]  # the failed rows are left to do
    assert [list(b) for b in slack] == [["text"]] * 3
    assert [b["text"] for b in slack] == [b["text"] for b in generic]
    assert len(broken) == 3  # tried, answered 500, logged

    # Both failures were logged, by number and format, never with their URL.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "webhook 3 (json) answered 500" in logged
    assert "webhook 4 (json) could not be reached" in logged
    assert "SECRET" not in logged
    # Nor is any URL in the run folder; manifest.yaml keeps ${W29_HOOK} and masks the rest.
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert b"SECRET" not in path.read_bytes(), path
    dumped = (tmp_path / "run" / "manifest.yaml").read_text()
    assert "${W29_HOOK}" in dumped and "http://127.0.0.1/********" in dumped


def notify_manifest(notify: Any) -> dict[str, Any]:
    return {
        "name": "n",
        "app": "http://127.0.0.1:1/",
        "inputs": {"rows": [{"x": "a"}]},
        "run": {"notify": notify},
    }


def test_webhook_urls_are_never_shown(tmp_path: Path) -> None:
    """A literal URL is masked in the manifest's dump and repr; a malformed one is not
    echoed by the error; the body shape follows the host unless `format` says."""
    literal = f"https://hooks.slack.com/services/{SECRET}"
    manifest = manifest_from_data(
        notify_manifest([literal, {"url": f"https://example.org/{SECRET}", "format": "discord"}]),
        path=tmp_path / "n.yaml",
        label="n.yaml",
    )
    assert manifest.run.notify is not None
    assert [w.format for w in manifest.run.notify.webhooks] == ["slack", "discord"]
    assert manifest.run.notify.webhooks[0].url.reveal() == literal
    shown = json.dumps(manifest.to_dict()) + repr(manifest) + str(manifest.run.notify)
    assert "SECRET" not in shown and "https://hooks.slack.com/********" in shown
    with pytest.raises(ManifestError) as info:
        manifest_from_data(
            notify_manifest(f"hooks.slack.com/{SECRET}"), path=tmp_path / "n.yaml", label="n"
        )
    assert "expected a webhook URL" in str(info.value) and "SECRET" not in str(info.value)


def test_each_event_is_told_once_until_it_is_over() -> None:
    """A spike is told once, and again only after the share fell to half of it; a pause
    once it lasted `pause_after`, once per pause; the budget's stop once."""
    posted: list[Notification] = []

    async def post(client: Any, webhooks: Any, note: Notification) -> int:
        posted.append(note)
        return 1

    now = [0.0]
    spec = NotifySpec(webhooks=(), failure_share=0.5, failure_window=4, pause_after=10.0)
    notifier = Notifier(spec, run="r", post=post, clock=lambda: now[0])

    def outcomes(*statuses: RecordStatus) -> None:
        for status in statuses:
            notifier.outcome(Outcome(submission=SimpleNamespace(key="k"), status=status))

    ok, error, cancelled = RecordStatus.OK, RecordStatus.ERROR, RecordStatus.CANCELLED
    outcomes(ok, ok, error, error)  # 2 of 4: a spike
    outcomes(error, error, cancelled, cancelled)  # still spiking; cancelled rows do not count
    outcomes(ok, ok, ok)  # 1 of 4: over
    outcomes(error, error)  # 2 of 4 again: a second spike
    for at, paused in [(0, "down"), (5, "down"), (10, "down"), (20, "down"), (21, None)]:
        now[0] = at
        notifier.check(paused, None)
    now[0] = 30
    notifier.check("quota", "budget: $1.00 spent of $1.00")
    now[0] = 40
    notifier.check("quota", "budget: $1.00 spent of $1.00")
    anyio.run(notifier.finish, None)
    assert [n.event for n in posted] == ["failures", "failures", "paused", "budget", "paused"]
    assert notifier.sent == [n.event for n in posted]
    assert "nothing sent for 0:00:10: down" in posted[2].text


def test_every_replica_down_is_told_as_a_pause(app_factory: Any, tmp_path: Path) -> None:
    """The only replica dies while rows are in flight: once nothing could be sent for
    `pause_after`, the webhook hears it ("all 1 replicas are down"); the app comes back on
    its port, the rows finish, and the end is told. Nothing else."""
    hold = tmp_path / "hold"
    hold.mkdir()
    (hold / "wait1").touch()
    log = tmp_path / "received.log"
    app = app_factory("recorder", env={"RECORDER_LOG": str(log), "RECORDER_HOLD_DIR": str(hold)})
    texts = ["a-0", "a-1", "wait1-0", "wait1-1", "b-0", "b-1"]
    with WebhookReceiver() as hooks:
        manifest = tmp_path / "down.yaml"
        manifest.write_text(
            json.dumps(
                {
                    "name": "down",
                    "app": {"endpoint": "/predict", "replicas": [{"url": app.url}]},
                    "inputs": {"rows": [{"x": t} for t in texts]},
                    "run": {
                        "concurrency": 2,
                        "retries": 10,
                        "notify": {"webhooks": [hooks.url("/hook")], "pause_after": "1s"},
                    },
                    "output": {"dir": str(tmp_path / "run")},
                }
            ),
            encoding="utf-8",
        )
        the_run = RunInThread(manifest, RunOptions(progress="quiet", handle_signals=False))
        try:
            until(lambda: "wait1-1" in (log.read_text() if log.exists() else ""), "rows held")
            app.kill()
            until(lambda: hooks.bodies("/hook"), "a message while every replica is down")
            (hold / "wait1").unlink()
            app.restart()
            summary = the_run.join()
        finally:
            (hold / "wait1").unlink(missing_ok=True)
            if not app.is_running():
                app.restart()  # the run may be waiting for it still
            the_run.join()
        bodies = hooks.bodies("/hook")
    assert summary.this_run["ok"] == 6
    assert [b["event"] for b in bodies] == ["paused", "end"]
    assert "all 1 replicas are down" in bodies[0]["text"]


def until(ok: Any, what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not ok():
        if time.monotonic() > deadline:
            pytest.fail(f"never: {what}")
        time.sleep(0.1)


def test_the_budget_stop_and_the_end_are_told_at_the_end() -> None:
    """The budget stopped the run after the watch last looked: `finish` tells it, then
    the end, with the command that resumes the run."""
    posted: list[Notification] = []

    async def post(client: Any, webhooks: Any, note: Notification) -> int:
        posted.append(note)
        return 1

    notifier = Notifier(NotifySpec(webhooks=()), run="r", post=post)
    summary = SummaryBuilder().build(
        name="r", run_dir="runs/r", wall=61.0, total=10, skipped=0,
        folder_counts={"ok": 4}, replicas=[], interrupted=True,
        resume_command="spacerun run r.yaml", done=4,
        halted_by="budget: $1.00 spent of $1.00, and the copies cost $3.60/h",
    )  # fmt: skip
    anyio.run(notifier.finish, summary)
    assert [n.event for n in posted] == ["budget", "end"]
    assert posted[0].text.startswith("r: stopped. budget: $1.00 spent of $1.00")
    assert "in 0:01:01" in posted[1].text
    assert posted[1].text.endswith("Incomplete; resume with: spacerun run r.yaml")
