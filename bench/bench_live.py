"""What one live write of `report.html` costs at 10k, 100k and 1M records.

    python bench/bench_live.py                          # 10,000 100,000 1,000,000
    python bench/bench_live.py --rows 10000 100000 --writes 5

For each size, a synthetic run folder (`tests/support/synthetic.py`: a 3 x 2 matrix,
three replicas, ~2% failures), then, in a fresh process, `--writes` full and
`--writes` light live writes (`runner.store.LivePage`: a full one reads the whole
folder, a light one renders the live numbers and the newest outputs over the last full
one's charts) from a worker thread, as the run does, while the event loop keeps a 10 ms
timer going. Per kind of write: wall and CPU seconds (median; CPU is the writing
thread's), how far apart the run then spaces them (the cost over 2%, at least 5 s), and
how late the loop's timer fired at worst meanwhile, against the same timer over a second
with no write (the run's own scheduling is held up by about the difference: the write
holds the GIL in parts).
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

WRITES = """
import json, statistics, sys, time
import anyio
from runner.run._live import EVERY, SHARE
from runner.store import LivePage

LIVE = {"updated": "12:00:00", "refresh": 5, "done": 1, "total": 2, "percent": 50.0,
        "ok": 1, "failed": 0, "in_flight": 4, "rate": 1.0, "eta": "0:00:01",
        "elapsed": "0:00:01", "cost": "$0.10", "cost_projected": "$0.20",
        "pauses": [], "note": None, "replicas": []}
page = LivePage(sys.argv[1])

def write(full):
    t0, c0 = time.perf_counter(), time.thread_time()
    page.write(LIVE, full=full)
    return time.perf_counter() - t0, time.thread_time() - c0

async def main(writes):
    lags = []
    async def ticker():
        while True:
            t = time.perf_counter()
            await anyio.sleep(0.01)
            lags.append(time.perf_counter() - t - 0.01)
    out = {}
    async with anyio.create_task_group() as group:
        group.start_soon(ticker)
        await anyio.sleep(1.0)  # the timer's lateness with no write, for comparison
        out["idle_lag"] = max(lags)
        for kind, full in (("full", True), ("light", False)):
            lags[:] = []
            runs = [await anyio.to_thread.run_sync(write, full) for _ in range(writes)]
            wall = statistics.median(w for w, _ in runs)
            out[kind] = {"wall": wall, "cpu": statistics.median(c for _, c in runs),
                         "interval": max(EVERY, wall / SHARE), "lag": max(lags)}
        group.cancel_scope.cancel()
    print(json.dumps(out))

page.write(LIVE, full=True)  # imports and the first read, as the run's first write does
anyio.run(main, int(sys.argv[2]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--writes", type=int, default=3)
    args = parser.parse_args()
    print(
        "| records | results.jsonl MB | full write: wall s | CPU s | every s | loop lag ms "
        "| light write: wall s | CPU s | every s | loop lag ms | loop lag ms, no write |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")  # fmt: skip
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
            run_dir = Path(tmp) / "run"
            started = time.perf_counter()
            write_synthetic_run(run_dir, rows)
            size = (run_dir / "results.jsonl").stat().st_size / 1e6
            print(f"<!-- {rows} records written in {time.perf_counter() - started:.0f} s -->")
            out = subprocess.run(
                [sys.executable, "-c", WRITES, str(run_dir), str(args.writes)],
                check=True, capture_output=True, text=True, cwd=ROOT,
            )  # fmt: skip
            f = json.loads(out.stdout)
            cells = [f"{rows:,}", f"{size:.0f}"]
            for kind in ("full", "light"):
                k = f[kind]
                cells += [f"{k['wall']:.2f}", f"{k['cpu']:.2f}", f"{k['interval']:.0f}",
                          f"{k['lag'] * 1e3:.0f}"]  # fmt: skip
            cells.append(f"{f['idle_lag'] * 1e3:.0f}")
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
