"""report.html of real runs, opened in a real browser: Debian's headless chromium, driven
by playwright (never playwright's own browser download).

Screenshots of both reports are kept in `tests/artifacts/` (git-ignored) for a person to
look at: `report-sweep.png` and `report-failures.png`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from support.browser import ARTIFACTS, SLOW_MACHINE_MS, chromium, require_chromium

from runner.manifest import load_manifest
from runner.run import RunOptions, run

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _needs_chromium() -> None:
    """Checked before each test's run, so a machine without the browser spends nothing."""
    require_chromium()


class Page:
    """The report open in a tab, with every console error and page error it raised."""

    def __init__(self, browser: Any, report: Path) -> None:
        self.errors: list[str] = []
        self.page = browser.new_page(viewport={"width": 1400, "height": 900})
        self.page.set_default_timeout(SLOW_MACHINE_MS)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(report.resolve().as_uri())
        self.page.wait_for_selector("#timeline .main-svg")
        self.page.wait_for_load_state("load")  # every image has loaded or failed

    def texts(self, selector: str) -> list[str]:
        return [t.strip() for t in self.page.eval_on_selector_all(
            selector, "els => els.map(e => e.textContent)"
        )]  # fmt: skip

    def loaded_images(self) -> int:
        count: int = self.page.evaluate(
            "Array.from(document.querySelectorAll('#gallery img'))"
            ".filter(i => i.complete && i.naturalWidth > 0).length"
        )
        return count

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / name
        self.page.screenshot(path=str(path), full_page=True)
        print(f"screenshot: {path}")
        return path


def failure_groups(page: Page) -> list[tuple[str, int]]:
    causes = page.texts("#failures .failure .cause")
    counts = page.texts("#failures .failure .count")
    return list(zip(causes, map(int, counts), strict=True))


def test_sweep_report_shows_the_grid(tmp_path: Path) -> None:
    """The sweep's report loads without errors, has a lane per replica and shows all 24
    images in a 4 x 6 grid (prompt rows x seed/guidance columns)."""
    manifest = load_manifest(
        ROOT / "sample_manifests" / "sweep.yaml", overrides=[f"output.dir={tmp_path / 'sweep'}"]
    )
    summary = run(manifest, RunOptions(progress="quiet", handle_signals=False))
    assert summary.this_run["ok"] == 24
    with chromium() as browser:
        check_sweep(Page(browser, tmp_path / "sweep" / "report.html"), summary)


def check_sweep(page: Page, summary: Any) -> None:
    page.screenshot("report-sweep.png")
    assert page.errors == []
    assert page.texts("#timeline .ytick text") == [r.name for r in summary.replicas]
    assert page.loaded_images() == 24
    rows = page.page.locator("#matrix tr")
    assert rows.count() == 1 + 4  # the header and one row per prompt
    assert page.texts("#matrix tr:first-child th")[1:] == [
        f"seed={s}, guidance={g}" for s in (1, 2, 3) for g in (4.0, 9.5)
    ]
    assert "4 x 3 x 2" in page.page.locator("#gallery .note").inner_text()


def test_failures_report_groups_match_the_summary(app_factory: Any, tmp_path: Path) -> None:
    """A run across two replicas with refused rows: a lane per replica, and the failure
    groups (cause and count) are summary.json's."""
    log, fails = tmp_path / "received.log", tmp_path / "refuse.txt"
    refused = ["bad-1", "bad-2", "bad-3", "forbidden"]
    fails.write_text("".join(f"{x}\n" for x in refused), encoding="utf-8")
    env = {"RECORDER_LOG": str(log), "RECORDER_FAILS": str(fails), "RECORDER_DELAY": "0.05"}
    apps = app_factory.many(["recorder", "recorder"], env=env)
    texts = [f"row-{i}" for i in range(30)] + refused
    manifest_path = tmp_path / "failing.yaml"
    manifest_path.write_text(
        json.dumps(
            {
                "name": "failing",
                "app": {"endpoint": "/predict", "replicas": [{"url": a.url} for a in apps]},
                "inputs": {"rows": [{"x": t} for t in texts]},
                "run": {"concurrency": 3, "retries": 1},
                "output": {"dir": str(tmp_path / "failing")},
            }
        ),
        encoding="utf-8",
    )
    summary = run(manifest_path, RunOptions(progress="quiet", handle_signals=False))
    assert summary.this_run["error"] == 4
    with chromium() as browser:
        check_failures(Page(browser, tmp_path / "failing" / "report.html"), tmp_path / "failing")


def check_failures(page: Page, run_dir: Path) -> None:
    page.screenshot("report-failures.png")
    assert page.errors == []
    stored = json.loads((run_dir / "summary.json").read_text())
    assert sorted(page.texts("#timeline .ytick text")) == sorted(
        r["name"] for r in stored["replicas"]
    )
    assert len(stored["replicas"]) == 2
    assert failure_groups(page) == [(g["cause"], g["count"]) for g in stored["failures_by_cause"]]
    assert page.texts('[data-count="error"] .n') == ["4"]
    shown_rows = page.texts("#failures .failure td code")
    assert len(shown_rows) == 4


def test_report_of_a_folder_alone_makes_no_request(tmp_path: Path) -> None:
    """A report built from a folder alone (no app) opens with its charts drawn and asks
    nothing of the network: plotly.js is inlined, images are the folder's own files."""
    from support.synthetic import write_synthetic_run

    from runner.store import build_report

    run_dir = write_synthetic_run(tmp_path / "run", 600)
    report = build_report(run_dir)
    requests: list[str] = []
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(SLOW_MACHINE_MS)
        page.on("request", lambda r: requests.append(r.url))
        page.goto(report.resolve().as_uri())
        page.wait_for_selector("#latency .main-svg")
        page.wait_for_load_state("load")
    assert requests and {u.split(":", 1)[0] for u in requests} == {"file"}
