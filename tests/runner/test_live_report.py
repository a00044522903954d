"""report.html while a real run goes, open in headless chromium from the run folder
(file://): it follows the run without anyone reloading it, shows the newest outputs,
stops reloading once the run has ended, and no request leaves the page.

The recorder app holds rows in flight while a gate file exists, so the test says when
the run moves on: 6 rows done, then 10, then all 14. The same for `spacerun watch`'s
server. Screenshots (`tests/artifacts/`): `live-mid.png` (6 done, 4 held),
`live-end.png` (the final report), and `watch-mid.png`, `watch-end.png`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.background import RunInThread
from support.browser import ARTIFACTS, SLOW_MACHINE_MS, chromium

from runner.run import RunOptions, WatchServer

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
    refresh_s: +(document.querySelector('meta[http-equiv="refresh"]') || {content: "0"}).content,
    values: live,
    newest: newest ? newest.textContent : "",
    ok: ok ? ok.textContent.trim() : null,
    scroll: window.scrollY,
  };
}"""


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


def held_run(app_factory: Any, tmp_path: Path, options: RunOptions) -> tuple[Path, RunInThread]:
    """A run of 14 rows in a thread: 6 pass, then 4 `wait1-` rows and 4 `wait2-` rows are
    held in flight while their gate file (in `tmp_path / "hold"`) exists."""
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
    return run_dir, RunInThread(manifest, options)


def follow(page: Any, url: Callable[[], str], hold: Path, the_run: RunInThread, name: str) -> int:
    """Open `url()` and check the page follows the held run to its end by itself;
    returns how many times the page loaded. Screenshots `<name>-mid.png`, `<name>-end.png`."""
    loads: list[str] = []
    page.on("load", lambda p: loads.append(p.url))
    page.goto(url())

    mid = wait_for(page, "6 rows done", lambda s: s["live"] and s["values"]["done"] == "6")
    assert mid["refresh"] == 1
    assert "A-5" in mid["newest"] and "WAIT1" not in mid["newest"]
    page.screenshot(path=str(_artifact(f"{name}-mid.png")), full_page=True)

    # Where the reader scrolled to is kept across the page's own reloads.
    page.evaluate("window.scrollTo(0, 200)")
    scrolled = len(loads)
    wait_for(page, "a reload", lambda s: len(loads) > scrolled)
    assert wait_for(page, "the scroll kept", lambda s: s["scroll"] > 0)["scroll"] == 200

    (hold / "wait1").unlink()  # the page moves on by itself
    moved = wait_for(page, "10 rows done", lambda s: s["live"] and s["values"]["done"] == "10")
    assert moved["values"]["ok"] == "10" and "WAIT1-" in moved["newest"]

    (hold / "wait2").unlink()
    summary = the_run.join()
    assert summary.this_run["ok"] == 14
    end = wait_for(page, "the final report", lambda s: not s["live"])
    assert end["refresh"] == 0 and end["ok"] == "14"
    page.screenshot(path=str(_artifact(f"{name}-end.png")), full_page=True)
    # No reload after the final one, past two of the page's last reload intervals.
    reloads = len(loads)
    page.wait_for_timeout(2_000 * max(mid["refresh_s"], moved["refresh_s"]) + 1_000)
    assert len(loads) == reloads
    return len(loads)


def new_page(browser: Any, requests: list[str]) -> Any:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(SLOW_MACHINE_MS)
    page.on("request", lambda r: requests.append(r.url))
    return page


def release(tmp_path: Path) -> None:
    for gate in ("wait1", "wait2"):
        (tmp_path / "hold" / gate).unlink(missing_ok=True)  # never leave the run hanging


def test_live_page_follows_the_run_and_stops_at_the_end(app_factory: Any, tmp_path: Path) -> None:
    """The run's own report.html, opened from the folder (file://)."""
    options = RunOptions(progress="quiet", handle_signals=False, live_report=0.5)
    run_dir, the_run = held_run(app_factory, tmp_path, options)
    report = run_dir / "report.html"
    requests: list[str] = []
    try:
        with chromium() as browser:
            page = new_page(browser, requests)
            deadline = time.monotonic() + 60
            while not report.exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            loads = follow(page, report.resolve().as_uri, tmp_path / "hold", the_run, "live")
    finally:
        release(tmp_path)
        the_run.join()
    assert loads >= 3  # it did follow the run by itself
    assert requests and {u.split(":", 1)[0] for u in requests} == {"file"}


def test_watch_serves_the_same_page_following_the_folder(app_factory: Any, tmp_path: Path) -> None:
    """`spacerun watch`'s server, over a folder whose run writes no live page itself (a
    run elsewhere, an older spacerun): the page is built from the folder as records
    arrive, and every request the page makes goes to the server, on loopback."""
    options = RunOptions(progress="quiet", handle_signals=False, live_report=None)
    run_dir, the_run = held_run(app_factory, tmp_path, options)
    requests: list[str] = []
    server: WatchServer | None = None
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "results.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        server = WatchServer(run_dir, port=0, every=0.5)
        serving = threading.Thread(target=server.serve_forever)
        serving.start()
        url = server.url
        assert url.startswith("http://127.0.0.1:")  # loopback unless asked otherwise
        with chromium() as browser:
            page = new_page(browser, requests)
            loads = follow(page, lambda: url, tmp_path / "hold", the_run, "watch")
    finally:
        release(tmp_path)
        the_run.join()
        if server is not None:
            server.shutdown()
            serving.join()
    assert loads >= 3
    assert requests and all(u.startswith(url) for u in requests), requests


def _artifact(name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    print(f"screenshot: {path}")
    return path
