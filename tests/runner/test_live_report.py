"""report.html while a real run goes, open in headless chromium from the run folder
(file://): it follows the run without anyone reloading it, shows the newest outputs,
stops reloading once the run has ended, and no request leaves the page.

The recorder app holds rows in flight while a gate file exists, so the test says when
the run moves on: 6 rows done, then 10, then all 14. Screenshots (`tests/artifacts/`):
`live-mid.png` (6 done, 4 held) and `live-end.png` (the final report).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.browser import ARTIFACTS, SLOW_MACHINE_MS, chromium

from runner.run import RunOptions, RunSummary, run

pytestmark = pytest.mark.timeout(300)

#: What the page shows, read in one go (None while a reload is under way).
READ = """() => {
  const live = {};
  document.querySelectorAll("[data-live]").forEach(e => {
    live[e.dataset.live] = e.textContent.trim();
  });
  const newest = document.getElementById("newest");
  const ok = document.querySelector('#summary [data-count="ok"] .n');
  return {
    live: document.getElementById("live") !== null,
    refresh: document.querySelectorAll('meta[http-equiv="refresh"]').length,
    values: live,
    newest: newest ? newest.textContent : "",
    ok: ok ? ok.textContent.trim() : null,
  };
}"""


class RunInThread:
    """`run()` in a thread of its own (the browser's sync API holds this one)."""

    def __init__(self, manifest: Path, options: RunOptions) -> None:
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(manifest, options))
        self._thread.start()

    def _run(self, manifest: Path, options: RunOptions) -> None:
        try:
            self.summary = run(manifest, options)
        except BaseException as exc:  # handed to the test
            self.error = exc

    def join(self) -> RunSummary:
        self._thread.join(timeout=120)
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary


def read(page: Any) -> dict[str, Any] | None:
    from playwright.sync_api import Error

    try:
        state: dict[str, Any] = page.evaluate(READ)
    except Error:  # the page is reloading: its document went away under the call
        return None
    return state


def wait_for(page: Any, what: str, ok: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Read the page until `ok` holds (it reloads itself meanwhile); fails with the last
    state read after a generous deadline (a busy machine parses plotly.js slowly)."""
    deadline = time.monotonic() + SLOW_MACHINE_MS / 1000
    state = None
    while time.monotonic() < deadline:
        state = read(page)
        if state is not None and ok(state):
            return state
        time.sleep(0.2)
    pytest.fail(f"the page never showed {what}; last read: {state}")


def test_live_page_follows_the_run_and_stops_at_the_end(app_factory: Any, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.mkdir()
    for gate in ("wait1", "wait2"):
        (hold / gate).touch()
    env = {"RECORDER_LOG": str(tmp_path / "received.log"), "RECORDER_HOLD_DIR": str(hold)}
    app = app_factory("recorder", env=env)
    texts = [f"a-{i}" for i in range(6)] + [f"wait1-{i}" for i in range(4)]
    texts += [f"wait2-{i}" for i in range(4)]
    run_dir = tmp_path / "run"
    manifest = tmp_path / "live.yaml"
    manifest.write_text(
        json.dumps(
            {
                "name": "live",
                "app": {"endpoint": "/predict", "replicas": [{"url": app.url}]},
                "inputs": {"rows": [{"x": t} for t in texts]},
                "run": {"concurrency": 4, "retries": 0},
                "output": {"dir": str(run_dir)},
            }
        ),
        encoding="utf-8",
    )
    report = run_dir / "report.html"
    the_run = RunInThread(
        manifest, RunOptions(progress="quiet", handle_signals=False, live_report=0.5)
    )
    try:
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(SLOW_MACHINE_MS)
            requests: list[str] = []
            loads: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.on("load", lambda p: loads.append(p.url))
            deadline = time.monotonic() + 60
            while not report.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            page.goto(report.resolve().as_uri())

            mid = wait_for(page, "6 rows done", lambda s: s["live"] and s["values"]["done"] == "6")
            assert mid["refresh"] == 1
            assert mid["values"]["in_flight"] != "0"  # the held rows
            assert "A-5" in mid["newest"] and "WAIT1" not in mid["newest"]
            page.screenshot(path=str(_artifact("live-mid.png")), full_page=True)

            (hold / "wait1").unlink()  # the page moves on by itself
            moved = wait_for(
                page, "10 rows done", lambda s: s["live"] and s["values"]["done"] == "10"
            )
            assert moved["values"]["ok"] == "10" and "WAIT1-" in moved["newest"]

            (hold / "wait2").unlink()
            summary = the_run.join()
            assert summary.this_run["ok"] == 14
            end = wait_for(page, "the final report", lambda s: not s["live"])
            assert end["refresh"] == 0 and end["ok"] == "14"
            page.screenshot(path=str(_artifact("live-end.png")), full_page=True)
            # No reload after the final one: wait past two live intervals of the page.
            reloads = len(loads)
            page.wait_for_timeout(5_000)
            assert len(loads) == reloads
    finally:
        for gate in ("wait1", "wait2"):
            (hold / gate).unlink(missing_ok=True)  # never leave the run hanging
        the_run.join()
    assert len(loads) >= 3  # it did follow the run by itself
    assert requests and {u.split(":", 1)[0] for u in requests} == {"file"}


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    print(f"screenshot: {path}")
    return path
