"""How soon `run()` sends its first job when resuming a run folder with a million ok rows.

Sets up, in a temporary folder: a CSV manifest of ROWS + 100 rows for the `bench` test
app (tests/apps/bench.py, started once on a free loopback port and given as a `url`
replica, so app start-up is not in the figures); a run folder as a first run leaves it
(validation stamp, key cache, and results.jsonl with the first ROWS keys ok). Then, in
this one process, for each path:

- `killed`: `run()` on the folder as a first run killed by kill -9 leaves it: no index
  snapshot, so all of results.jsonl is scanned (stamp matches: no re-validation; done
  rows skipped by reading their cached keys);
- `fast`: the same folder as a run stopped by Ctrl-C leaves it: its store was closed,
  which saved the index snapshot (`cache/index.bin`);
- `all-done`: `run()` again once the last 100 are ok too: no app is contacted at all;
- `old`: `run(..., RunOptions(fast_resume=False))`: validate every row, re-expand
  every row to compute its key (what resume did before the cache).

it reports the seconds from calling `run()` to the first job sent (the scheduler's first
attempt) and to the end. results.jsonl is cut back to its starting size between paths.

    python bench/bench_resume_run.py               # 1,000,000 ok rows + 100 to do
    python bench/bench_resume_run.py --rows 200000
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import anyio  # noqa: E402
from support.apps import start_app  # noqa: E402

from jobs import AsyncClient  # noqa: E402
from runner.inputs import Submission, validate_submissions  # noqa: E402
from runner.manifest import load_manifest  # noqa: E402
from runner.run import (  # noqa: E402
    Progress,
    RunOptions,
    ValidationStamp,
    run,
    walk,
    write_stamp,
)
from runner.store import KeyCache, ResultsStore  # noqa: E402

REMAINING = 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows already ok")
    args = parser.parse_args()
    app = start_app("bench", env={"BENCH_DELAY": "0"})
    try:
        with tempfile.TemporaryDirectory(prefix="bench-resume-run-") as tmp:
            bench(Path(tmp), app.url, args.rows)
    finally:
        app.stop()


def bench(tmp: Path, url: str, done_rows: int) -> None:
    rows_csv = tmp / "rows.csv"
    with open(rows_csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["x"])
        writer.writerows([f"row {i}"] for i in range(done_rows + REMAINING))
    run_dir = tmp / "run"
    manifest = load_manifest(
        rows_csv,
        app=url,
        endpoint="/predict",
        overrides=[f"output.dir={run_dir}", "run.concurrency=8"],
    )
    print(f"setting up: {done_rows:,} ok + {REMAINING} to do, CSV manifest, app at {url}")
    started = time.perf_counter()
    first_run_folder(manifest, run_dir, done_rows)
    print(f"  (set-up as a first run leaves it: {time.perf_counter() - started:.1f} s)")
    results = run_dir / "results.jsonl"
    size = results.stat().st_size

    figures = {}
    quiet = RunOptions(progress="quiet", handle_signals=False)
    figures["killed"] = timed_run(manifest, quiet)
    os.truncate(results, size)
    ResultsStore.open(run_dir).close()  # what a run stopped by Ctrl-C leaves
    figures["fast"] = timed_run(manifest, quiet)
    figures["all-done"] = timed_run(manifest, quiet)
    os.truncate(results, size)
    figures["old"] = timed_run(
        manifest, RunOptions(progress="quiet", handle_signals=False, fast_resume=False)
    )
    print(f"\nresume of {done_rows:,} ok rows + {REMAINING} to do (seconds from run() start):")
    print(f"  {'path':<10} {'first job sent':>15} {'run finished':>13} {'sent':>6}")
    for name, (first, total, sent) in figures.items():
        first_text = "-" if first is None else f"{first:.2f}"
        print(f"  {name:<10} {first_text:>15} {total:>13.2f} {sent:>6}")


def first_run_folder(manifest, run_dir: Path, done_rows: int) -> None:  # type: ignore[no-untyped-def]
    """Validation stamp + key cache as a first run writes them, then results.jsonl with
    the first `done_rows` keys ok (as if those jobs had run)."""

    async def schema():  # type: ignore[no-untyped-def]
        async with await AsyncClient.connect(manifest.app.replicas[0].url) as client:
            return client.schema

    app_schema = anyio.run(schema)
    report = validate_submissions(manifest, app_schema)
    assert report.ok, report.format()
    stamp = ValidationStamp.of(
        manifest,
        app_schema,
        endpoint=report.endpoint or "",
        rows=report.rows,
        submissions=report.submissions,
    )
    run_dir.mkdir(parents=True)
    cache = KeyCache.open(run_dir, stamp.stamp)
    write_stamp(run_dir, stamp)
    # As `ResultRecord.to_line` writes a record today (`submitted_at` last).
    line = (
        '{"key":"%s","status":"ok","row":%d,"inputs":{"x":"row %d"},"outputs":{"y":'
        '"row %d"},"error_type":null,"error_message":null,"attempts":1,"causes":[],'
        '"replica":"http://127.0.0.1","queue_time":0.001,"run_time":0.002,'
        '"finished_at":"2025-01-01T00:00:00.003+00:00",'
        '"submitted_at":"2025-01-01T00:00:00.000+00:00"}\n'
    )
    with open(run_dir / "results.jsonl", "w") as out:
        for index, submission in enumerate(walk(manifest, app_schema, cache, lambda _key: True)):
            assert isinstance(submission, Submission)
            if index < done_rows:
                out.write(line % (submission.key, index, index, index))
    cache.close()


def timed_run(manifest, options: RunOptions) -> tuple[float | None, float, int]:  # type: ignore[no-untyped-def]
    first: list[float] = []
    original = Progress.attempt_started

    def attempt_started(self: Progress, key: str, replica: str) -> None:
        if not first:
            first.append(time.perf_counter())
        original(self, key, replica)

    Progress.attempt_started = attempt_started  # type: ignore[method-assign]
    try:
        started = time.perf_counter()
        summary = run(manifest, options)
        ended = time.perf_counter()
    finally:
        Progress.attempt_started = original  # type: ignore[method-assign]
    assert summary.complete, summary
    return (first[0] - started if first else None, ended - started, summary.this_run["ok"])


if __name__ == "__main__":
    main()
