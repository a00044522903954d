"""Resume: after a clean stop, Ctrl-C and kill -9 (at several points, mid-write included),
every row ends ok exactly once in results.jsonl and no finished row is sent again;
--restart, --retry-failed / --no-retry-failed, a manifest change, and the fast-resume
cache (validation stamp, key cache) including a run with nothing left that contacts no app.

The app is `tests/apps/recorder.py`, which appends every input it receives to a log
file: that log is how the tests see what was sent. `spacerun` runs as a subprocess
where signals and exit codes matter.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.apps import RunningApp
from support.cli import spacerun, spacerun_popen
from support.results import ok_inputs, records, wait_until

from runner.manifest import load_manifest
from runner.run import RunHandle, RunOptions, RunSummary, run, run_async
from runner.store import KeyCache

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]


# --- helpers -------------------------------------------------------------------------------


class Recorder:
    """A running recorder app, its log of received inputs and its list of inputs to refuse."""

    def __init__(self, app: RunningApp, log: Path, fails: Path) -> None:
        self.app, self.log, self.fails = app, log, fails

    @property
    def url(self) -> str:
        return self.app.url

    def received(self) -> Counter[str]:
        try:
            return Counter(self.log.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return Counter()

    def refuse(self, *inputs: str) -> None:
        self.fails.write_text("".join(f"{x}\n" for x in inputs), encoding="utf-8")


@pytest.fixture
def recorder(app_factory: Any, tmp_path: Path) -> Callable[..., Recorder]:
    def start(delay: float = 0.0) -> Recorder:
        log, fails = tmp_path / "received.log", tmp_path / "refuse.txt"
        app = app_factory(
            "recorder",
            env={
                "RECORDER_LOG": str(log),
                "RECORDER_FAILS": str(fails),
                "RECORDER_DELAY": str(delay),
            },
        )
        return Recorder(app, log, fails)

    return start


def write_rows(path: Path, inputs: list[str]) -> Path:
    path.write_text("x\n" + "".join(f"{x}\n" for x in inputs), encoding="utf-8")
    return path


def rows(n: int, prefix: str = "r") -> list[str]:
    return [f"{prefix}{i:04d}" for i in range(n)]


def run_args(rows_csv: Path, url: str, run_dir: Path, *extra: str) -> list[str]:
    return [
        "run",
        str(rows_csv),
        "--app",
        url,
        "--endpoint",
        "/predict",
        "--set",
        f"output.dir={run_dir}",
        "--set",
        "run.concurrency=8",
        "--progress",
        "plain",
        *extra,
    ]


def result_lines(run_dir: Path) -> int:
    try:
        return (run_dir / "results.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def assert_resumed_exactly_once(
    run_dir: Path,
    expected: list[str],
    recorder: Recorder,
    done_before: Counter[str],
    received_before: Counter[str],
) -> None:
    """Every row ok exactly once in results.jsonl (all lines parse), and no row that was
    ok before the resume reached the app again."""
    lines = (run_dir / "results.jsonl").read_bytes()
    assert lines.endswith(b"\n")
    ok = ok_inputs(run_dir)
    assert set(ok) == set(expected)
    assert all(count == 1 for count in ok.values()), {x: c for x, c in ok.items() if c > 1}
    ok_keys = Counter(r["key"] for r in records(run_dir) if r["status"] == "ok")
    assert all(count == 1 for count in ok_keys.values())
    received = recorder.received()
    resent = {
        x: received[x] - received_before[x]
        for x in done_before
        if received[x] != received_before[x]
    }
    assert resent == {}, f"rows already ok were sent again: {resent}"
    assert set(received) >= set(expected)


# --- interruptions ---------------------------------------------------------------------------


def test_resume_after_clean_stop(recorder: Callable[..., Recorder], tmp_path: Path) -> None:
    app = recorder(delay=0.02)
    expected = rows(200)
    rows_csv = write_rows(tmp_path / "rows.csv", expected)
    run_dir = tmp_path / "run"
    manifest = load_manifest(
        rows_csv,
        app=app.url,
        endpoint="/predict",
        overrides=[f"output.dir={run_dir}", "run.concurrency=8"],
    )
    options = RunOptions(progress="quiet", handle_signals=False)

    async def stop_after(n: int) -> RunSummary:
        handle = RunHandle()
        out: dict[str, RunSummary] = {}

        async def go() -> None:
            out["summary"] = await run_async(manifest, options, handle=handle)

        async with anyio.create_task_group() as group:
            group.start_soon(go)
            with anyio.fail_after(60):
                # Polls the results file the run writes (bounded by fail_after): there is no
                # event for \"N results on disk\" outside the run.
                while result_lines(run_dir) < n:  # noqa: ASYNC110
                    await anyio.sleep(0.002)
            handle.stop()
        return out["summary"]

    first = anyio.run(stop_after, 40)
    assert first.exit_status == 130
    assert first.remaining and first.resume_command and "run" in first.resume_command
    done_before, received_before = ok_inputs(run_dir), app.received()
    assert 40 <= sum(done_before.values()) < len(expected)

    second = run(manifest, options)
    assert second.exit_status == 0 and second.complete
    assert second.skipped_already_ok == sum(done_before.values())
    assert_resumed_exactly_once(run_dir, expected, app, done_before, received_before)


def test_resume_after_ctrl_c(recorder: Callable[..., Recorder], tmp_path: Path) -> None:
    app = recorder(delay=0.02)
    expected = rows(300)
    rows_csv = write_rows(tmp_path / "rows.csv", expected)
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    proc = spacerun_popen(*args)
    try:
        wait_until(
            lambda: result_lines(run_dir) >= 30 or proc.poll() is not None, what="30 results"
        )
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert "to resume: spacerun run" in err
    done_before, received_before = ok_inputs(run_dir), app.received()
    assert len(done_before) < len(expected)

    again = spacerun(*args)
    assert again.returncode == 0, again.stderr
    assert f"{len(done_before)} already done" in again.stderr
    assert_resumed_exactly_once(run_dir, expected, app, done_before, received_before)


@pytest.mark.parametrize("kill_at", [0, 1, 37, 151, 263])
def test_resume_after_kill_9(
    recorder: Callable[..., Recorder], tmp_path: Path, kill_at: int
) -> None:
    """kill -9 after `kill_at` result lines (0: right after validation, before any result),
    while short jobs complete 8 at a time, so the kill often lands mid-write."""
    app = recorder(delay=0.005)
    expected = rows(300)
    rows_csv = write_rows(tmp_path / "rows.csv", expected)
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    proc = spacerun_popen(*args)
    stamp = run_dir / "cache" / "validation.json"
    try:
        if kill_at == 0:
            wait_until(lambda: stamp.exists() or proc.poll() is not None, what="validation")
        else:
            wait_until(
                lambda: result_lines(run_dir) >= kill_at or proc.poll() is not None,
                what=f"{kill_at} results",
            )
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    done_before, received_before = ok_inputs(run_dir), app.received()
    assert len(done_before) < len(expected)

    again = spacerun(*args)
    assert again.returncode == 0, again.stderr
    assert_resumed_exactly_once(run_dir, expected, app, done_before, received_before)
    # A second resume finds everything done and sends nothing.
    received = app.received()
    third = spacerun(*args)
    assert third.returncode == 0, third.stderr
    assert app.received() == received


def test_torn_results_line_and_torn_key_cache_are_repaired(
    recorder: Callable[..., Recorder], tmp_path: Path
) -> None:
    """What kill -9 mid-write leaves: half a results line and half a key-cache entry."""
    app = recorder()
    expected = rows(30)
    rows_csv = write_rows(tmp_path / "rows.csv", expected)
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    assert spacerun(*args).returncode == 0
    results = run_dir / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    # Drop the last 5 records, and leave half of the next one, as a kill mid-write does.
    results.write_bytes(b"".join(lines[:25]) + lines[25][: len(lines[25]) // 2])
    keys = run_dir / "cache" / "keys.txt"
    keys.write_bytes(keys.read_bytes()[:-20])
    done_before, received_before = ok_inputs(run_dir), app.received()
    assert len(done_before) == 25

    again = spacerun(*args)
    assert again.returncode == 0, again.stderr
    assert_resumed_exactly_once(run_dir, expected, app, done_before, received_before)
    assert sum(app.received().values()) == sum(received_before.values()) + 5
    assert (run_dir / "results.jsonl.torn").exists()


# --- --restart, --retry-failed, manifest changes ---------------------------------------------


def test_restart_sets_the_old_folder_aside_and_runs_everything(
    recorder: Callable[..., Recorder], tmp_path: Path
) -> None:
    app = recorder()
    expected = rows(20)
    rows_csv = write_rows(tmp_path / "rows.csv", expected)
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    assert spacerun(*args).returncode == 0
    old = (run_dir / "results.jsonl").read_bytes()

    again = spacerun(*args, "--restart")
    assert again.returncode == 0, again.stderr
    assert "--restart: the previous run folder is kept as" in again.stderr
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("run.before-")]
    assert len(aside) == 1 and (aside[0] / "results.jsonl").read_bytes() == old
    assert app.received() == Counter({x: 2 for x in expected})
    assert sorted(ok_inputs(run_dir)) == expected
    assert len(records(run_dir)) == len(expected)


def test_retry_failed_and_no_retry_failed(
    recorder: Callable[..., Recorder], tmp_path: Path
) -> None:
    app = recorder()
    expected = rows(10)
    app.refuse("r0003", "r0007")
    rows_csv = write_rows(tmp_path / "rows.csv", expected)
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    first = spacerun(*args)
    assert first.returncode == 1, first.stderr
    assert "AppError" in first.stderr and "Refused: r0003" in first.stderr
    app.refuse()  # the app would accept them now

    kept = spacerun(*args, "--no-retry-failed")
    assert kept.returncode == 1
    assert "2 failed before and were not retried" in kept.stderr
    assert app.received()["r0003"] == 1 and sum(app.received().values()) == 10

    retried = spacerun(*args)  # --retry-failed is the default
    assert retried.returncode == 0, retried.stderr
    assert app.received()["r0003"] == 2 and app.received()["r0007"] == 2
    assert sum(app.received().values()) == 12
    assert sorted(ok_inputs(run_dir)) == expected


def test_a_manifest_change_runs_the_changed_rows_only(
    recorder: Callable[..., Recorder], tmp_path: Path
) -> None:
    app = recorder()
    rows_csv = write_rows(tmp_path / "rows.csv", rows(10))
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    assert spacerun(*args).returncode == 0
    changed = [*rows(8), "new-a", "new-b"]  # two rows edited, eight as they were
    write_rows(rows_csv, changed)

    again = spacerun(*args)
    assert again.returncode == 0, again.stderr
    assert "8 already done" in again.stderr and "10 of 10 ok" in again.stderr
    received = app.received()
    assert received["new-a"] == received["new-b"] == 1
    assert all(received[x] == 1 for x in rows(10))
    # The stale rows' records stay in the folder (and in exports), marked by their keys.
    assert set(ok_inputs(run_dir)) == {*rows(10), "new-a", "new-b"}
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] and summary["total"] == 10 and summary["folder"]["ok"] == 12


def test_identical_rows_run_once(recorder: Callable[..., Recorder], tmp_path: Path) -> None:
    app = recorder()
    rows_csv = write_rows(tmp_path / "rows.csv", ["same", "other", "same", "same"])
    run_dir = tmp_path / "run"
    result = spacerun(*run_args(rows_csv, app.url, run_dir))
    assert result.returncode == 0, result.stderr
    assert app.received() == Counter({"same": 1, "other": 1})
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] and summary["identical_rows"] == 2


# --- the fast-resume cache ------------------------------------------------------------------


def test_all_done_contacts_no_app(recorder: Callable[..., Recorder], tmp_path: Path) -> None:
    app = recorder()
    rows_csv = write_rows(tmp_path / "rows.csv", rows(20))
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    assert spacerun(*args).returncode == 0
    assert (run_dir / "cache" / "validation.json").exists()
    app.app.stop()  # nothing answers at that URL any more

    again = spacerun(*args)
    assert again.returncode == 0, again.stderr
    assert "nothing left to run: no app was started or contacted" in again.stderr
    assert "20 of 20 ok" in again.stderr


def test_a_changed_input_file_is_validated_again(
    recorder: Callable[..., Recorder], tmp_path: Path
) -> None:
    app = recorder()
    rows_csv = write_rows(tmp_path / "rows.csv", rows(5))
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    assert spacerun(*args).returncode == 0
    stamp = json.loads((run_dir / "cache" / "validation.json").read_text())["stamp"]
    rows_csv.write_text("x,n\n" + "".join(f"{x},abc\n" for x in rows(5)))

    bad = spacerun(*args)
    assert bad.returncode == 1, bad.stderr  # the new rows do not fit: nothing is sent
    assert "nothing was submitted" in bad.stderr
    assert sum(app.received().values()) == 5
    assert json.loads((run_dir / "cache" / "validation.json").read_text())["stamp"] == stamp


def test_resume_without_the_cache_folder(recorder: Callable[..., Recorder], tmp_path: Path) -> None:
    app = recorder()
    rows_csv = write_rows(tmp_path / "rows.csv", rows(12))
    run_dir = tmp_path / "run"
    args = run_args(rows_csv, app.url, run_dir)
    assert spacerun(*args).returncode == 0
    for path in (run_dir / "cache").iterdir():
        path.unlink()
    again = spacerun(*args)
    assert again.returncode == 0, again.stderr
    assert "12 already done" in again.stderr
    assert sum(app.received().values()) == 12


def test_an_edited_local_file_runs_again_despite_the_cache(
    files_app: RunningApp, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("a", "b", "c"):
        (data / f"{name}.txt").write_text(f"content {name}\n")
    manifest = tmp_path / "files.yaml"
    manifest.write_text(
        f"name: files\napp: {{url: '{files_app.url}', endpoint: /echo_file}}\n"
        "inputs:\n  files: data/*.txt\n  map: {file: '{path}'}\n"
        "output: {dir: run}\n",
        encoding="utf-8",
    )
    options = RunOptions(progress="quiet", handle_signals=False)
    first = run(manifest, options)
    assert first.this_run["ok"] == 3
    (data / "b.txt").write_text("content b, edited\n")
    os.utime(data / "b.txt", ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))

    second = run(manifest, options)
    assert second.complete
    assert second.this_run["ok"] == 1 and second.skipped_already_ok == 2
    third = run(manifest, options)
    assert third.this_run["ok"] == 0 and third.replicas == ()


def test_key_cache_rejects_garbage_and_other_stamps(tmp_path: Path) -> None:
    cache = KeyCache.open(tmp_path, "s1")
    cache.put(0, "0" * 20, None)
    cache.put(1, "1" * 20, "ab" * 8)
    cache.close()
    reopened = KeyCache.open(tmp_path, "s1")
    assert reopened.count == 2
    assert reopened.key(1) == "1" * 20 and reopened.files(1) == "ab" * 8
    assert reopened.files(0) is None
    reopened.close()
    path = tmp_path / "cache" / "keys.txt"
    path.write_bytes(path.read_bytes() + b"zz garbage\n")
    assert KeyCache.open(tmp_path, "s1").count == 2
    assert KeyCache.open(tmp_path, "s2").count == 0


def test_the_old_path_and_the_fast_path_agree(
    recorder: Callable[..., Recorder], tmp_path: Path
) -> None:
    app = recorder()
    expected = rows(15)
    rows_csv = write_rows(tmp_path / "rows.csv", expected)
    run_dir = tmp_path / "run"
    manifest = load_manifest(
        rows_csv, app=app.url, endpoint="/predict", overrides=[f"output.dir={run_dir}"]
    )
    quiet = RunOptions(progress="quiet", handle_signals=False)
    slow = RunOptions(progress="quiet", handle_signals=False, fast_resume=False)
    assert run(manifest, slow).this_run["ok"] == 15
    results = run_dir / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    results.write_bytes(b"".join(lines[:10]))
    fast = run(manifest, quiet)  # no cache yet: validates, builds it, runs the 5 left
    assert fast.this_run["ok"] == 5 and fast.skipped_already_ok == 10
    assert run(manifest, slow).skipped_already_ok == 15
    # The 5 records cut away ran again (once); nothing else was sent twice.
    assert sum(app.received().values()) == 20
