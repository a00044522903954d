"""One client, one app: jobs per second and client CPU, spacerun vs gradio_client.

    python bench/bench_client.py [--jobs 200] [--delay 0.05] [--concurrency 16] [--rounds 3]

Starts the `bench` test app (a `DELAY` s endpoint with `concurrency_limit=CONCURRENCY`),
then, in alternating rounds, submits JOBS jobs at once through `jobs.AsyncClient` and
through gradio_client's `Client.submit` (what users write today), each in a fresh
subprocess so CPU seconds, threads and peak memory belong to that client alone. Prints a
table of medians and the ratios. gradio_client is only needed here, never by spacerun.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))


def run_spacerun(url: str, n: int) -> dict[str, Any]:
    import anyio

    from jobs import AsyncClient

    async def main() -> tuple[int, int]:
        async with AsyncClient(url) as client:
            await client.predict("warm-up", api_name="/predict")
            start_threads = threading.active_count()
            jobs_ = [client.submit(str(i), api_name="/predict") for i in range(n)]
            results = [await j.result() for j in jobs_]
            ok = sum(r == str(i) for i, r in enumerate(results))
            return ok, threading.active_count() - start_threads

    return _measure(lambda: anyio.run(main))


def run_gradio_client(url: str, n: int) -> dict[str, Any]:
    from gradio_client import Client

    def main() -> tuple[int, int]:
        client = Client(url, verbose=False)
        client.predict("warm-up", api_name="/predict")
        start_threads = threading.active_count()
        jobs_ = [client.submit(str(i), api_name="/predict") for i in range(n)]
        ok = 0
        peak_threads = 0
        for i, job in enumerate(jobs_):
            peak_threads = max(peak_threads, threading.active_count())
            # A failure (gradio_client's spurious CancelledError too) counts as not ok.
            with contextlib.suppress(BaseException):
                ok += job.result() == str(i)
        client.close()
        return ok, peak_threads - start_threads

    return _measure(main)


def _measure(body: Any) -> dict[str, Any]:
    cpu0 = time.process_time()
    wall0 = time.perf_counter()
    ok, threads = body()
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"ok": ok, "wall": wall, "cpu": cpu, "threads": threads, "rss_mb": rss_mb}


def child(kind: str, url: str, n: int) -> None:
    result = (run_spacerun if kind == "spacerun" else run_gradio_client)(url, n)
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "URL", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], int(args.child[2]))
        return

    from support.apps import start_app

    env = {"BENCH_DELAY": str(args.delay), "BENCH_CONCURRENCY": str(args.concurrency)}
    kinds = ["spacerun", "gradio_client"]
    rows: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
    with start_app("bench", env=env) as app:
        for _ in range(args.rounds):
            for kind in kinds:
                out = subprocess.run(
                    [sys.executable, __file__, "--child", kind, app.url, str(args.jobs)],
                    capture_output=True,
                    text=True,
                    check=True,
                    timeout=600,
                )
                rows[kind].append(json.loads(out.stdout.strip().splitlines()[-1]))
    ideal = args.jobs * args.delay / args.concurrency
    print(
        f"{args.jobs} jobs at once, {args.delay * 1000:g} ms endpoint, "
        f"concurrency_limit={args.concurrency}; median of {args.rounds} rounds; "
        f"server ideal {ideal:.2f} s"
    )
    print(
        f"{'client':<14}{'jobs/s':>8}{'wall s':>8}{'CPU s':>7}{'CPU ms/job':>11}"
        f"{'threads':>8}{'peak MB':>8}{'failed':>7}{'vs ideal':>9}"
    )
    summary = {}
    for kind in kinds:
        r = rows[kind]
        wall = statistics.median(x["wall"] for x in r)
        cpu = statistics.median(x["cpu"] for x in r)
        summary[kind] = args.jobs / wall
        print(
            f"{kind:<14}{args.jobs / wall:>8.1f}{wall:>8.2f}{cpu:>7.2f}"
            f"{cpu / args.jobs * 1000:>11.2f}{max(x['threads'] for x in r):>8}"
            f"{max(x['rss_mb'] for x in r):>8.0f}"
            f"{sum(args.jobs - x['ok'] for x in r):>7}{ideal / wall:>9.2f}"
        )
    print(
        f"spacerun / gradio_client throughput: "
        f"{summary['spacerun'] / summary['gradio_client']:.2f}x"
    )


if __name__ == "__main__":
    main()
