"""How long the command line takes to answer: this tree against a baseline commit.

Times, each in a fresh interpreter, wall clock from start to exit:

- `spacerun --help`;
- `spacerun status RUN_DIR` on a run folder of 1,000 finished rows;
- `import jobs` and `import runner.cli` alone (what every use of the client and every
  command pays before doing anything).

The baseline is a `git worktree` of another commit (default: `main`), made in a
temporary folder and removed at the end. Both trees run with this interpreter and its
installed packages, `PYTHONPATH` set to the tree; their runs alternate so a change in
the machine's load hits both. Prints the median and the fastest wall time of each, the
median CPU time (user + system, which a busy machine inflates less than wall time), and
the ratios of the medians (this tree / baseline).

    python bench/bench_startup.py                    # against main, 15 runs each
    python bench/bench_startup.py --baseline HEAD~3 -n 30
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_resume import generate  # noqa: E402


def commands(run_dir: Path) -> dict[str, list[str]]:
    return {
        "spacerun --help": ["-m", "runner.cli", "--help"],
        "spacerun status RUN_DIR": ["-m", "runner.cli", "status", str(run_dir)],
        "import jobs": ["-c", "import jobs"],
        "import runner.cli": ["-c", "import runner.cli"],
    }


def once(tree: Path, args: list[str]) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of the child (user + system), of one run."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=tree, env=env, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="main", help="a commit (default: main)")
    parser.add_argument("-n", type=int, default=15, help="runs of each command per tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="spacerun-startup-") as tmp:
        base = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--quiet", "--detach", str(base), args.baseline],
            cwd=ROOT,
            check=True,
        )
        try:
            run_dir = Path(tmp) / "run"
            generate(run_dir, 1000)
            trees = {"baseline": base, "this tree": ROOT}
            for tree in trees.values():  # compile the .pyc files and warm the page cache
                for argv in commands(run_dir).values():
                    once(tree, argv)
            table = []
            for name, argv in commands(run_dir).items():
                wall: dict[str, list[float]] = {label: [] for label in trees}
                cpu: dict[str, list[float]] = {label: [] for label in trees}
                for _ in range(args.n):
                    for label, tree in trees.items():
                        took, used = once(tree, argv)
                        wall[label].append(took)
                        cpu[label].append(used)
                base_wall, this_wall = (statistics.median(wall[label]) for label in trees)
                base_cpu, this_cpu = (statistics.median(cpu[label]) for label in trees)
                table.append(
                    f"| {name} | {base_wall:.3f} ({min(wall['baseline']):.3f}) "
                    f"| {this_wall:.3f} ({min(wall['this tree']):.3f}) "
                    f"| {this_wall / base_wall:.2f}x | {base_cpu:.3f} | {this_cpu:.3f} "
                    f"| {this_cpu / base_cpu:.2f}x |"
                )
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT)
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    load = os.getloadavg()[0]
    print(
        f"baseline {args.baseline}, this tree {revision}; seconds, median of {args.n} runs "
        f"(fastest in brackets); CPU is the child's user + system; load average {load:.1f}\n"
    )
    print("| command | baseline wall (min) | this tree wall (min) | wall, this / baseline "
          "| baseline CPU | this tree CPU | CPU, this / baseline |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
