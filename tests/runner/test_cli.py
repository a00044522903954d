"""The `spacerun` command line as a user runs it (a subprocess): exit codes, --help,
validate, status, export through pandas, --progress json, --quiet; and the sample
manifests, which must at least load and validate offline against their local apps."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pytest
from support.apps import RunningApp
from support.cli import spacerun

from runner.manifest import load_manifest
from runner.run import RunHandle, RunOptions, RunSummary, run_async, validate_manifest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_manifests"


def calculator_csv(path: Path, rows: Sequence[tuple[float, str, float]]) -> Path:
    path.write_text("num1,operation,num2\n" + "".join(f"{a},{op},{b}\n" for a, op, b in rows))
    return path


def calc_args(rows_csv: Path, app: RunningApp, run_dir: Path, *extra: str) -> list[str]:
    return [
        "run",
        str(rows_csv),
        "--app",
        app.url,
        "--endpoint",
        "/predict",
        "--set",
        f"output.dir={run_dir}",
        *extra,
    ]


@pytest.fixture
def recorder_app(app_factory: Any, tmp_path: Path) -> tuple[RunningApp, Path]:
    log = tmp_path / "received.log"
    return app_factory("recorder", env={"RECORDER_LOG": str(log)}), log


# --- exit codes ------------------------------------------------------------------------------


def test_exit_0_when_every_row_is_ok(calculator_app: RunningApp, tmp_path: Path) -> None:
    rows_csv = calculator_csv(tmp_path / "rows.csv", [(1, "add", 2), (6, "multiply", 7)])
    result = spacerun(*calc_args(rows_csv, calculator_app, tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert "2 ok, 0 failed" in result.stderr and "2 of 2 ok" in result.stderr


def test_exit_1_when_some_rows_fail(calculator_app: RunningApp, tmp_path: Path) -> None:
    rows_csv = calculator_csv(
        tmp_path / "rows.csv", [(1, "add", 2), (1, "divide", 0), (2, "divide", 0)]
    )
    result = spacerun(*calc_args(rows_csv, calculator_app, tmp_path / "run"))
    assert result.returncode == 1, result.stderr
    assert "1 ok, 2 failed" in result.stderr
    assert "2 x AppError: " in result.stderr and "Cannot divide by zero" in result.stderr
    assert "to resume: spacerun run" in result.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["exit_status"] == 1 and summary["failures_by_cause"][0]["count"] == 2


def test_exit_2_for_a_malformed_manifest(tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text("name: bad\napp:\n  url: http://127.0.0.1:9\nrun:\n  rate: fast\n")
    for command in ("run", "validate"):
        result = spacerun(command, str(manifest))
        assert result.returncode == 2, result.stderr
        assert f"{manifest}:5" in result.stderr and "run.rate" in result.stderr
        assert "Traceback" not in result.stderr


def test_exit_2_for_bad_yaml_and_a_missing_file(tmp_path: Path) -> None:
    manifest = tmp_path / "broken.yaml"
    manifest.write_text("name: broken\napp: [unclosed\n")
    result = spacerun("run", str(manifest))
    assert result.returncode == 2 and f"{manifest}:" in result.stderr
    assert "Traceback" not in result.stderr
    missing = spacerun("run", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert "Traceback" not in missing.stderr


@pytest.mark.parametrize(
    "command", ["run", "validate", "view-api", "status", "export", "report", "watch"]
)
def test_help_of_each_command(command: str) -> None:
    result = spacerun(command, "--help")
    assert result.returncode == 0
    assert f"usage: spacerun {command}" in result.stdout
    assert "Traceback" not in result.stderr


def test_help_names_the_commands_and_exit_codes() -> None:
    result = spacerun("--help")
    assert result.returncode == 0
    for word in ("run", "validate", "view-api", "status", "export", "watch", "130 interrupted"):
        assert word in result.stdout


# --- validate ---------------------------------------------------------------------------------


def test_validate_reports_invalid_rows_grouped_and_sends_nothing(
    recorder_app: tuple[RunningApp, Path], tmp_path: Path
) -> None:
    app, log = recorder_app
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text("x,n\nfine,1\nbad,abc\nworse,xyz\nalso,1\n")
    result = spacerun("validate", str(rows_csv), "--app", app.url, "--endpoint", "/predict")
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "2 problems in 4 rows" in out and "nothing was submitted" in out
    assert "rows.csv:3 (row 1)" in out and "rows.csv:4 (row 2)" in out
    assert "[2 rows]" in out  # grouped: one heading, two examples
    run_result = spacerun(*calc_args(rows_csv, app, tmp_path / "run"))
    assert run_result.returncode == 1 and "nothing was submitted" in run_result.stderr
    assert not log.exists() or log.read_text() == ""


def test_validate_ok(recorder_app: tuple[RunningApp, Path], tmp_path: Path) -> None:
    app, log = recorder_app
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text("x\na\nb\n")
    result = spacerun("validate", str(rows_csv), "--app", app.url, "--endpoint", "/predict")
    assert result.returncode == 0
    assert "2 submissions from 2 rows fit /predict" in result.stdout
    assert not log.exists() or log.read_text() == ""


# --- status, progress, quiet, export ---------------------------------------------------------


def test_status_of_a_half_done_folder_touches_no_app(app_factory: Any, tmp_path: Path) -> None:
    log, fails = tmp_path / "received.log", tmp_path / "refuse.txt"
    fails.write_text("r0001\nr0002\n")
    app = app_factory(
        "recorder",
        env={"RECORDER_LOG": str(log), "RECORDER_FAILS": str(fails), "RECORDER_DELAY": "0.02"},
    )
    rows_csv = tmp_path / "rows.csv"
    rows_csv.write_text("x\n" + "".join(f"r{i:04d}\n" for i in range(100)))
    run_dir = tmp_path / "run"
    manifest = load_manifest(
        rows_csv,
        app=app.url,
        endpoint="/predict",
        overrides=[f"output.dir={run_dir}", "run.concurrency=4"],
    )

    async def half() -> RunSummary:
        handle = RunHandle()
        out: dict[str, RunSummary] = {}

        async def go() -> None:
            out["summary"] = await run_async(
                manifest, RunOptions(progress="quiet", handle_signals=False), handle=handle
            )

        async with anyio.create_task_group() as group:
            group.start_soon(go)
            with anyio.fail_after(60):
                # Polls the results file the run writes (bounded by fail_after): there is no
                # event for \"N results on disk\" outside the run.
                while _lines(run_dir) < 20:  # noqa: ASYNC110
                    await anyio.sleep(0.002)
            handle.stop()
        return out["summary"]

    summary = anyio.run(half)
    assert summary.exit_status == 130
    app.stop()  # status must not need it
    counts = Counter(
        json.loads(line)["status"] for line in (run_dir / "results.jsonl").read_text().splitlines()
    )

    result = spacerun("status", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert f"{counts['ok']} of 100 ok ({counts['ok']} ok, 2 error" in result.stdout
    assert "Refused: r0001" in result.stdout and "Refused: r0002" in result.stdout
    as_json = json.loads(spacerun("status", str(run_dir), "--json").stdout)
    assert as_json["counts"]["ok"] == counts["ok"]
    assert as_json["counts"]["error"] == 2
    assert as_json["total"] == 100
    messages = {f["error_message"] for f in as_json["last_failures"]}
    assert len(messages) == 2 and all("Refused: r000" in m for m in messages)


def _lines(run_dir: Path) -> int:
    try:
        return (run_dir / "results.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_progress_json_lines_parse(calculator_app: RunningApp, tmp_path: Path) -> None:
    rows_csv = calculator_csv(tmp_path / "rows.csv", [(i, "add", 1) for i in range(5)])
    result = spacerun(*calc_args(rows_csv, calculator_app, tmp_path / "run", "--progress", "json"))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines() if line.strip()]
    progress = [e for e in events if e["event"] == "progress"]
    assert progress and progress[-1]["ok"] == 5 and progress[-1]["total"] == 5
    assert {"ok", "failed", "retrying", "in_flight", "rate", "eta_seconds"} <= set(progress[-1])


def test_quiet_prints_nothing_on_success(calculator_app: RunningApp, tmp_path: Path) -> None:
    rows_csv = calculator_csv(tmp_path / "rows.csv", [(1, "add", 1), (2, "add", 2)])
    result = spacerun(*calc_args(rows_csv, calculator_app, tmp_path / "run", "--quiet"))
    assert result.returncode == 0
    assert result.stdout == "" and result.stderr == ""


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_round_trips_through_pandas(
    calculator_app: RunningApp, tmp_path: Path, fmt: str
) -> None:
    rows = [(1, "add", 2), (6, "multiply", 7), (1, "divide", 0)]
    rows_csv = calculator_csv(tmp_path / "rows.csv", rows)
    run_dir = tmp_path / "run"
    assert spacerun(*calc_args(rows_csv, calculator_app, run_dir)).returncode == 1
    result = spacerun("export", str(run_dir), "--format", fmt)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == run_dir / f"export.{fmt}" and path.exists()
    readers: dict[str, Callable[[Path], pd.DataFrame]] = {
        "csv": pd.read_csv,
        "parquet": pd.read_parquet,
        "jsonl": lambda p: pd.read_json(p, lines=True),
    }
    table = readers[fmt](path)
    assert len(table) == 3
    table = table.sort_values("row").reset_index(drop=True)
    assert list(table["status"]) == ["ok", "ok", "error"]
    assert list(table["inputs.num1"]) == [1, 6, 1]
    assert list(table["inputs.operation"]) == ["add", "multiply", "divide"]
    assert list(table["outputs.Result"][:2]) == [3, 42]
    assert table["error_message"][2].endswith("Cannot divide by zero")
    records = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert set(table["key"]) == {r["key"] for r in records}


def test_export_to_a_chosen_file(calculator_app: RunningApp, tmp_path: Path) -> None:
    rows_csv = calculator_csv(tmp_path / "rows.csv", [(1, "add", 2)])
    run_dir = tmp_path / "run"
    assert spacerun(*calc_args(rows_csv, calculator_app, run_dir)).returncode == 0
    out = tmp_path / "table.parquet"
    result = spacerun("export", str(run_dir), "--format", "parquet", "--out", str(out))
    assert result.returncode == 0 and pd.read_parquet(out)["outputs.Result"][0] == 3


# --- sample manifests -------------------------------------------------------------------------


SAMPLE_CASES: dict[str, tuple[dict[str, Any], int]] = {
    "transcribe.yaml": ({}, 10),
    "translate.yaml": ({}, 60),
    "sweep.yaml": ({}, 24),
    "resume.yaml": ({}, 32),
    "phrases.csv": ({"app": "apps/translate.py", "endpoint": "/translate"}, 6),
}


def test_every_sample_manifest_is_covered() -> None:
    samples = {p.name for p in SAMPLES.iterdir() if p.suffix in (".yaml", ".csv")}
    # space_on_every_gpu.yaml and dataset_transcribe.yaml need the Hub: test_local_space.py
    # and test_dataset_sources.py validate them against the stand-in.
    assert samples == {*SAMPLE_CASES, "space_on_every_gpu.yaml", "dataset_transcribe.yaml"}


@pytest.mark.parametrize("name", sorted(SAMPLE_CASES))
def test_sample_manifest_loads_and_validates(name: str) -> None:
    kwargs, submissions = SAMPLE_CASES[name]
    text = (SAMPLES / name).read_text()
    if name.endswith(".yaml"):
        assert text.startswith("#"), "each sample says in a comment what it shows"
    manifest = load_manifest(SAMPLES / name, **kwargs)
    report = anyio.run(lambda: validate_manifest(manifest, on_message=lambda _: None))
    assert report.ok, report.format()
    assert report.submissions == submissions
