"""The report of a large run folder: how long `build_report` takes and how big it is.

    python bench/bench_report.py                 # 100,000 records
    python bench/bench_report.py --rows 1000000
    python bench/bench_report.py --rows 1000000 --baseline ../main   # side by side

`--baseline` builds the same folder's report with the code of another checkout too (a
`git worktree` of the commit to compare with), one build after the other.

The folder is synthetic (`tests/support/synthetic.py`, written with the store's own
writer): a 3 x 2 matrix, three replicas, ~2% failures of three causes. The report is
built in a fresh subprocess so its CPU time and peak memory are its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.synthetic import write_synthetic_run  # noqa: E402

BUILD = """
import json, resource, sys, time
t0 = time.perf_counter(); c0 = time.process_time()
from runner.store import build_report
path = build_report(sys.argv[1])
print(json.dumps({"wall": time.perf_counter() - t0, "cpu": time.process_time() - c0,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "bytes": path.stat().st_size}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--baseline", type=Path, help="a checkout to build the report with too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        run_dir = Path(tmp) / "run"
        started = time.perf_counter()
        write_synthetic_run(run_dir, args.rows)
        written = time.perf_counter() - started
        size = (run_dir / "results.jsonl").stat().st_size
        print(
            f"{args.rows:,} records, results.jsonl {size / 1e6:.1f} MB (written in {written:.1f} s)"
        )
        for name, code in [("baseline", args.baseline), ("this", ROOT)]:
            if code is not None:
                _build(name, code.resolve(), run_dir)


def _build(name: str, code: Path, run_dir: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", BUILD, str(run_dir)],
        check=True, capture_output=True, text=True, cwd=code,
    )  # fmt: skip
    figures = json.loads(out.stdout)
    from runner.store._report import _plotly_js  # the fixed part of every report

    fixed = len(_plotly_js())
    run_part = (figures["bytes"] - fixed) / 1e3
    print(
        f"{name} ({code.name}): report.html {figures['bytes'] / 1e6:.2f} MB "
        f"({fixed / 1e6:.2f} MB of it plotly.js, {run_part:.0f} kB the run's), built in "
        f"{figures['wall']:.2f} s wall, {figures['cpu']:.2f} s CPU, "
        f"peak {figures['peak_mb']:.0f} MB"
    )


if __name__ == "__main__":
    main()
