"""`spacerun run` on real old gradio servers: a batch, then its resume, on each protocol.

The servers are `tests/old_gradio/apps/seed.py` on the pinned releases of
`tests/old_gradio/` (started once per session, shared with tests/jobs/test_old_gradio.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from support.apps import RunningApp
from support.cli import spacerun
from support.old_gradio import SERVERS, OldApps

pytestmark = pytest.mark.timeout(900)

VERSIONS = [v for v in SERVERS if not v.startswith("3.")]


@pytest.fixture(scope="module")
def seed_apps(old_apps: OldApps) -> dict[str, RunningApp]:
    old_apps.wanted = VERSIONS
    return {version: old_apps.get(version) for version in VERSIONS}


@pytest.mark.parametrize("version", VERSIONS)
def test_batch_and_resume(seed_apps: dict[str, RunningApp], version: str, tmp_path: Path) -> None:
    """Two rows ok and one failing in the app; the resume sends only the failed row again,
    and the summary names the replica's gradio and protocol."""
    rows = tmp_path / "rows.csv"
    with rows.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["num1", "operation", "num2"])
        writer.writerows([(1, "add", 2), (6, "multiply", 7), (1, "divide", 0)])
    run_dir = tmp_path / "run"
    args = [
        "run",
        str(rows),
        "--app",
        seed_apps[version].url,
        "--endpoint",
        "/predict",
        "--set",
        f"output.dir={run_dir}",
    ]
    first = spacerun(*args, timeout=180)
    assert first.returncode == 1, first.stderr
    assert "2 ok, 1 failed" in first.stderr and "Cannot divide by zero" in first.stderr
    assert f"gradio {version} ({SERVERS[version]})" in first.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    (replica,) = summary["replicas"]
    assert (replica["gradio"], replica["protocol"]) == (version, SERVERS[version])

    second = spacerun(*args, timeout=180)
    assert second.returncode == 1, second.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["skipped_already_ok"] == 2
    assert summary["this_run"]["ok"] == 0 and summary["this_run"]["error"] == 1
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    # Each ok row was sent once; the failed one twice (the first run and the resume).
    assert sorted((r["row"], r["status"], r["outputs"]) for r in records) == [
        (0, "ok", {"result": 3}),
        (1, "ok", {"result": 42}),
        (2, "error", None),
        (2, "error", None),
    ]
    assert {r["api"]["gradio"] for r in records} == {version}
