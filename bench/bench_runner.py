"""A batch across replicas: spacerun's scheduler vs gradio_client round-robin.

    python bench/bench_runner.py [--jobs 200 2000] [--replicas 1 3] [--delay 0.05]
                                 [--concurrency 16] [--rounds 1] [--profile]
                                 [--baseline-root OTHER_CHECKOUT]

Starts three copies of the `bench` test app (a DELAY s endpoint with
`concurrency_limit=CONCURRENCY`) and, for every replica count and batch size, runs the
same batch through

* spacerun: `runner.scheduling.Scheduler` over a `ReplicaPool` of `jobs.AsyncClient`s,
  `concurrency` jobs in flight per replica (the app's own limit). This is the engine
  alone: no manifest, no run folder, no progress display.
* spacerun-run: the whole `spacerun run` path on a CSV manifest of the same rows, every
  feature on: validation, results written to a run folder, a global rate limit,
  retries, a job timeout (no progress display). Its wall and CPU include connecting
  and validating.
* gradio_client: one `Client` per replica, `Client.submit` for every job round-robin,
  then `job.result()` for each - what a user writes today.

Each client runs in a fresh subprocess, so CPU seconds and peak memory are its own.
Prints a table: jobs/s, the ratio spacerun / gradio_client, the ratio to the servers'
ideal (`jobs x delay / (concurrency x replicas)` seconds), client CPU, peak RSS and
failures. `--profile` also prints spacerun's hottest functions (cProfile) for the
largest case. `--baseline-root` also runs the spacerun rows from another checkout of
spacerun (say, the last release, `git worktree add ../base v0.3`), in the same run and
against the same servers, labelled `@base`: before and after a change, side by side.
gradio_client is a bench-only tool, never imported by jobs or runner.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import pstats
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

KINDS = ("spacerun", "spacerun-run", "gradio_client")


@dataclass(frozen=True, slots=True)
class _Sub:
    key: str
    row: int
    inputs: dict[str, Any]


def run_spacerun(urls: list[str], n: int, concurrency: int, profile: bool) -> dict[str, Any]:
    import anyio

    from jobs import AsyncClient
    from runner.scheduling import AdaptiveLimit, Outcome, Replica, ReplicaPool, Scheduler
    from runner.store import RecordStatus

    result: dict[str, Any] = {}

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            replicas = []
            for i, url in enumerate(urls):
                client = await AsyncClient.connect(url, download_files=False)
                stack.push_async_callback(client.aclose)
                await client.predict("warm-up", api_name="/predict")
                replicas.append(
                    Replica(name=f"r{i}", client=client, limit=AdaptiveLimit(maximum=concurrency))
                )
            ok = 0

            def on_outcome(outcome: Outcome) -> None:
                nonlocal ok
                ok += (
                    outcome.status is RecordStatus.OK
                    and outcome.value == outcome.submission.inputs["x"]
                )

            pool = ReplicaPool(replicas)
            scheduler = Scheduler(pool, on_outcome=on_outcome, endpoint="/predict")
            subs = [_Sub(str(i), i, {"x": str(i)}) for i in range(n)]
            profiler = cProfile.Profile(time.process_time) if profile else None
            cpu0, wall0 = time.process_time(), time.perf_counter()
            if profiler is not None:
                profiler.enable()
            async with pool.probing():
                await scheduler.run(subs)
            if profiler is not None:
                profiler.disable()
                result["profile"] = _top(profiler)
            result.update(ok=ok, wall=time.perf_counter() - wall0, cpu=time.process_time() - cpu0)

    anyio.run(main)
    result["rss_mb"] = _peak_rss_mb()
    return result


def run_spacerun_run(urls: list[str], n: int, concurrency: int, profile: bool) -> dict[str, Any]:
    """The whole `spacerun run` path: manifest, validation, results on disk, rate limit,
    retries, timeout (progress display off)."""
    import tempfile

    from runner.run import RunOptions, run

    folder = Path(tempfile.mkdtemp(prefix="bench-runner-"))
    (folder / "rows.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(n)))
    replicas = "".join(f"    - url: {url}\n" for url in urls)
    manifest = folder / "batch.yaml"
    manifest.write_text(
        "name: bench\napp:\n  endpoint: /predict\n  replicas:\n"
        f"{replicas}inputs:\n  csv: {folder / 'rows.csv'}\n"
        f"run:\n  concurrency: {concurrency}\n  rate: 100000/s\n  retries: 2\n"
        f"  timeout: 60s\noutput:\n  dir: {folder / 'out'}\n"
    )
    options = RunOptions(progress="off", handle_signals=False)
    profiler = cProfile.Profile(time.process_time) if profile else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if profiler is not None:
        profiler.enable()
    run(manifest, options)  # what `spacerun run` calls, event loop choice included
    if profiler is not None:
        profiler.disable()
    result: dict[str, Any] = {
        "wall": time.perf_counter() - wall0,
        "cpu": time.process_time() - cpu0,
    }
    if profiler is not None:
        result["profile"] = _top(profiler)
    with (folder / "out" / "results.jsonl").open() as lines:
        records = [json.loads(line) for line in lines]
    result["ok"] = sum(
        r["status"] == "ok" and r["outputs"]["y"] == r["inputs"]["x"] for r in records
    )
    result["rss_mb"] = _peak_rss_mb()
    return result


def run_gradio_client(urls: list[str], n: int, concurrency: int, profile: bool) -> dict[str, Any]:
    from gradio_client import Client

    clients = [Client(url, verbose=False) for url in urls]
    for client in clients:
        client.predict("warm-up", api_name="/predict")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    jobs = [clients[i % len(clients)].submit(str(i), api_name="/predict") for i in range(n)]
    ok = 0
    for i, job in enumerate(jobs):
        # A failure (gradio_client's spurious CancelledError too) counts as not ok.
        with contextlib.suppress(BaseException):
            ok += job.result() == str(i)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    for client in clients:
        client.close()
    return {"ok": ok, "wall": wall, "cpu": cpu, "rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _top(profiler: cProfile.Profile, lines: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(lines)
    return _by_package(stats) + out.getvalue()


def _by_package(stats: pstats.Stats) -> str:
    """Own CPU time summed per top-level package (asyncio, httpcore, jobs, ...)."""
    totals: dict[str, float] = {}
    for (filename, _line, _name), row in stats.stats.items():  # type: ignore[attr-defined]
        parts = Path(filename).parts
        if "site-packages" in parts:
            package = parts[parts.index("site-packages") + 1]
        elif filename.startswith(str(ROOT)):
            package = Path(filename).relative_to(ROOT).parts[0]
        elif filename == "~":
            package = "builtins"
        else:
            package = "stdlib:" + Path(filename).parent.name
        totals[package] = totals.get(package, 0.0) + row[2]
    ranked = sorted(totals.items(), key=lambda item: -item[1])[:12]
    return "own CPU s by package: " + ", ".join(f"{p} {t:.2f}" for p, t in ranked) + "\n"


def child(
    kind: str, n: int, concurrency: int, urls: list[str], profile: bool, root: str | None
) -> None:
    if root is not None:
        # Before anything imports jobs or runner: the other checkout's code is measured.
        sys.path.insert(0, str(Path(root).resolve()))
    runner = {
        "spacerun": run_spacerun,
        "spacerun-run": run_spacerun_run,
        "gradio_client": run_gradio_client,
    }[kind]
    print(json.dumps(runner(urls, n, concurrency, profile)))


def _run_child(
    kind: str, n: int, concurrency: int, urls: list[str], profile: bool, root: str | None = None
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, str(n), str(concurrency), ",".join(urls)]
    if profile:
        command.append("--profile")
    if root is not None:
        command += ["--baseline-root", root]
    out = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _wait_idle(urls: list[str]) -> None:
    # gradio_client leaves nothing queued when it finishes, but a failed child might.
    import httpx

    for url in urls:
        with httpx.Client(base_url=url, timeout=10, trust_env=False) as http:
            prefix = http.get("/config").json().get("api_prefix", "")
            deadline = time.monotonic() + 60
            while http.get(f"{prefix}/queue/status").json()["queue_size"] and (
                time.monotonic() < deadline
            ):
                time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    parser.add_argument(
        "--profile",
        action="store_true",
        help="cProfile spacerun on the largest case and print hot spots",
    )
    parser.add_argument("--profile-kind", choices=KINDS[:2], default="spacerun-run")
    parser.add_argument(
        "--baseline-root",
        help="also run the spacerun rows from this other checkout of spacerun (as @base)",
    )
    parser.add_argument(
        "--child", nargs=4, metavar=("KIND", "N", "CONC", "URLS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        kind, n, conc, urls = args.child
        child(kind, int(n), int(conc), urls.split(","), args.profile, args.baseline_root)
        return

    from support.apps import start_apps

    env = {"BENCH_DELAY": str(args.delay), "BENCH_CONCURRENCY": str(args.concurrency)}
    apps = start_apps(["bench"] * max(args.replicas), env=env, ready_timeout=300)
    rows = []
    profile_text = None
    try:
        for replicas in args.replicas:
            urls = [app.url for app in apps[:replicas]]
            for n in args.jobs:
                for kind, root in _variants(args):
                    runs = []
                    for _ in range(args.rounds):
                        _wait_idle(urls)
                        runs.append(_run_child(kind, n, args.concurrency, urls, False, root))
                    label = kind if root is None else f"{kind}@base"
                    rows.append(_row(label, replicas, n, runs, args))
                    print(_format_row(rows[-1]), file=sys.stderr, flush=True)
        if args.profile:
            urls = [app.url for app in apps[: max(args.replicas)]]
            _wait_idle(urls)
            profile_text = _run_child(
                args.profile_kind, max(args.jobs), args.concurrency, urls, True
            ).get("profile")
    finally:
        for app in apps:
            app.stop()
    print(_table(rows, args))
    if profile_text:
        print(
            f"\n{args.profile_kind}, hottest functions (cProfile on CPU time, tottime), "
            f"{max(args.jobs)} jobs on {max(args.replicas)} replicas:\n{profile_text}"
        )


def _variants(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """(kind, checkout) pairs in the order they run: each spacerun kind right after its
    baseline, so that both see the machine in the same state."""
    out: list[tuple[str, str | None]] = []
    for kind in args.kinds:
        if args.baseline_root and kind != "gradio_client":
            out.append((kind, args.baseline_root))
        out.append((kind, None))
    return out


def _row(
    kind: str, replicas: int, n: int, runs: list[dict[str, Any]], args: argparse.Namespace
) -> dict[str, Any]:
    wall = statistics.median(r["wall"] for r in runs)
    ideal = n * args.delay / (args.concurrency * replicas)
    return {
        "kind": kind,
        "replicas": replicas,
        "jobs": n,
        "wall": wall,
        "rate": n / wall,
        "ideal_ratio": ideal / wall,
        "cpu": statistics.median(r["cpu"] for r in runs),
        "rss": max(r["rss_mb"] for r in runs),
        "failed": sum(n - r["ok"] for r in runs),
    }


def _format_row(row: dict[str, Any], ratio: str = "", cpu_ratio: str = "") -> str:
    return (
        f"| {row['replicas']} | {row['jobs']} | {row['kind']} | {row['rate']:.0f} | "
        f"{ratio} | {row['ideal_ratio']:.2f} | {row['wall']:.2f} | {row['cpu']:.2f} | "
        f"{row['cpu'] / row['jobs'] * 1000:.2f} | {cpu_ratio} | {row['rss']:.0f} | "
        f"{row['failed']} |"
    )


def _table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    by_case = {(r["replicas"], r["jobs"], r["kind"]): r for r in rows}
    head = [
        f"{args.delay * 1000:g} ms endpoint, concurrency_limit={args.concurrency} per replica;"
        f" median of {args.rounds} round(s); each client in its own process",
        "",
        "| replicas | jobs | client | jobs/s | spacerun / gradio_client | vs ideal | wall s |"
        " CPU s | CPU ms/job | CPU vs @base | peak MB | failed |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines = []
    for row in rows:
        ratio = cpu_ratio = ""
        if row["kind"] != "gradio_client":
            other = by_case.get((row["replicas"], row["jobs"], "gradio_client"))
            if other is not None:
                ratio = f"{row['rate'] / other['rate']:.2f}x"
            base = by_case.get((row["replicas"], row["jobs"], f"{row['kind']}@base"))
            if base is not None:
                cpu_ratio = f"{row['cpu'] / base['cpu']:.2f}x"
        lines.append(_format_row(row, ratio, cpu_ratio))
    return "\n".join(head + lines + _marginal(rows))


def _marginal(rows: list[dict[str, Any]]) -> list[str]:
    """CPU per job without what a run costs once (imports, connecting, validation, the
    report): the CPU difference between the largest and smallest batch of a case."""
    out = []
    for kind in dict.fromkeys(r["kind"] for r in rows):
        for replicas in dict.fromkeys(r["replicas"] for r in rows):
            case = sorted(
                (r for r in rows if r["kind"] == kind and r["replicas"] == replicas),
                key=lambda r: r["jobs"],
            )
            if len(case) >= 2 and case[-1]["jobs"] > case[0]["jobs"]:
                small, large = case[0], case[-1]
                per_job = (large["cpu"] - small["cpu"]) / (large["jobs"] - small["jobs"])
                out.append(
                    f"- {kind}, {replicas} replica(s): {per_job * 1000:.2f} ms of CPU per job "
                    f"beyond the first {small['jobs']} ({large['jobs']} - {small['jobs']} jobs)"
                )
    return ["", "Marginal CPU per job:", *out] if out else []


if __name__ == "__main__":
    main()
