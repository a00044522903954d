"""An uneven fleet, measured on the servers' clock: every app slot busy, and the tail.

    python bench/bench_fleet.py [--jobs 1000] [--rtt 0 0.05 0.15]
                                [--baseline-root OTHER_CHECKOUT] [--gradio-client]
                                [--slow-tail]

Three copies of the `bench` test app, each `concurrency_limit=2`, taking 0.05 s,
0.25 s and 1.0 s a call (40 + 8 + 2 = 50 calls/s of app capacity), get the same batch
through the whole `spacerun run` path with `run.concurrency: 2` (and the manifest's
defaults otherwise: queue-ahead and hedging as shipped). With `--rtt`, each replica
sits behind `bench/latency_proxy.py` adding that round trip (0: direct). With
`--baseline-root`, the same run from another checkout (`@base`) goes right before
ours, against the same servers: side by side. `--gradio-client` adds a 6-thread pool
over one `Client` per replica. `--slow-tail` adds a run whose slow replica takes 5 s a
call, where hedging has something to do: its duplicated app time is reported.

Every figure comes from the apps' own records of each call (start and end, on the
machine's monotonic clock, `/spans`): wall is the first call's start to the last one's
end; "of capacity" is the ideal time (jobs / 50 calls/s) over it; "busy" is each
replica's app seconds over its 2 slots x the time while rows were left to send (to the
last call's start); "tail" is from the last call's start to the last end. Duplicated
calls are the apps' calls beyond one per row, and their app seconds. Client CPU is the
run's own process (`CPU ms/job`). Each client runs in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

DELAYS = (0.05, 0.25, 1.0)
SLOW_TAIL = (0.05, 0.25, 5.0)
SLOTS = 2


def run_spacerun(urls: list[str], n: int) -> dict[str, Any]:
    from runner.run import RunOptions, run

    folder = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    (folder / "rows.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(n)))
    replicas = "".join(f"    - url: {url}\n" for url in urls)
    manifest = folder / "batch.yaml"
    manifest.write_text(
        "name: fleet\napp:\n  endpoint: /predict\n  replicas:\n"
        f"{replicas}inputs:\n  csv: {folder / 'rows.csv'}\n"
        f"run:\n  concurrency: {SLOTS}\n  timeout: 120s\noutput:\n  dir: {folder / 'out'}\n"
    )
    cpu0, wall0 = time.process_time(), time.perf_counter()
    run(manifest, RunOptions(progress="off", handle_signals=False))
    result: dict[str, Any] = {
        "wall": time.perf_counter() - wall0,
        "cpu": time.process_time() - cpu0,
    }
    with (folder / "out" / "results.jsonl").open() as lines:
        records = [json.loads(line) for line in lines]
    result["ok"] = sum(
        r["status"] == "ok" and r["outputs"]["y"] == r["inputs"]["x"] for r in records
    )
    result["records"] = len(records)
    result["by_replica"] = {}
    for record in records:
        name = str(record.get("replica"))
        result["by_replica"][name] = result["by_replica"].get(name, 0) + 1
    summary = json.loads((folder / "out" / "summary.json").read_text())
    result["hedges"] = sum(r.get("hedges", 0) for r in summary.get("replicas", []))
    result["hedge_seconds"] = sum(r.get("hedge_seconds", 0.0) for r in summary.get("replicas", []))
    return result


def run_gradio_client(urls: list[str], n: int) -> dict[str, Any]:
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client

    clients = [Client(url, verbose=False) for url in urls]
    cpu0, wall0 = time.process_time(), time.perf_counter()

    def one(i: int) -> bool:
        with contextlib.suppress(BaseException):
            return bool(clients[i % len(clients)].predict(str(i), api_name="/predict") == str(i))
        return False

    with ThreadPoolExecutor(SLOTS * len(urls)) as pool:
        ok = sum(pool.map(one, range(n)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    for client in clients:
        client.close()
    return {"ok": ok, "wall": wall, "cpu": cpu, "hedges": 0, "hedge_seconds": 0.0}


def _call(url: str, api_name: str) -> Any:
    import httpx

    with httpx.Client(base_url=url, timeout=30, trust_env=False) as http:
        prefix = http.get("/config").json().get("api_prefix", "")
        answer = http.post(f"{prefix}/run/{api_name}", json={"data": []}).json()
    return json.loads(answer["data"][0])


def _wait_idle(urls: list[str]) -> None:
    deadline = time.monotonic() + 120
    while any(_call(url, "spans")["running"] for url in urls) and time.monotonic() < deadline:
        time.sleep(0.2)


def measure(
    direct: list[str], urls: list[str], delays: tuple[float, ...], n: int, run: dict[str, Any]
) -> dict[str, Any]:
    """The figures of one run, from the apps' records of their calls."""
    spans = [_call(url, "spans")["spans"] for url in direct]
    everything = [s for per in spans for s in per]
    start, end = min(s[0] for s in everything), max(s[1] for s in everything)
    last_start = max(s[0] for s in everything)
    backlog = max(1e-9, last_start - start)
    capacity = sum(SLOTS / d for d in delays)
    busy = [
        sum(min(e, last_start) - b for b, e in per if b < last_start) / (SLOTS * backlog)
        for per in spans
    ]
    calls = [len(per) for per in spans]
    extra = sum(calls) - n
    # Calls beyond the rows recorded on a replica (a record names its replica by URL)
    # are hedges' losers that ran: their app time, at that replica's mean call.
    duplicated = None
    if "by_replica" in run:
        ports = [url.rsplit(":", 1)[1].rstrip("/") for url in urls]
        duplicated = 0.0
        for index, per in enumerate(spans):
            kept = sum(c for name, c in run["by_replica"].items() if ports[index] in name)
            mean = sum(e - b for b, e in per) / len(per) if per else 0.0
            duplicated += max(0, len(per) - kept) * mean
    return {
        "wall": end - start,
        "capacity": n / capacity / (end - start),
        "busy": busy,
        "tail": end - last_start,
        "calls": calls,
        "extra_calls": extra,
        "duplicated_s": duplicated,
        "ok": run["ok"],
        "cpu_ms": 1000 * run["cpu"] / n,
        "hedges": run["hedges"],
        "hedge_seconds": run["hedge_seconds"],
    }


def child(kind: str, n: int, urls: list[str], root: str | None) -> None:
    if root is not None:
        sys.path.insert(0, str(Path(root).resolve()))
    runner = run_gradio_client if kind == "gradio_client" else run_spacerun
    print(json.dumps(runner(urls, n)))


def _run_child(kind: str, n: int, urls: list[str], root: str | None) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, str(n), ",".join(urls)]
    if root is not None:
        command += ["--baseline-root", root]
    out = subprocess.run(command, capture_output=True, text=True, timeout=3600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _fleet(delays: tuple[float, ...]) -> list[Any]:
    from support.apps import start_app

    return [
        start_app("bench", env={"BENCH_DELAY": str(d), "BENCH_CONCURRENCY": str(SLOTS)})
        for d in delays
    ]


def _runs(
    label: str, delays: tuple[float, ...], rtts: list[float], args: argparse.Namespace
) -> list[dict[str, Any]]:
    from latency_proxy import LatencyProxies

    apps = _fleet(delays)
    rows = []
    try:
        direct = [app.url for app in apps]
        for rtt in rtts:
            with contextlib.ExitStack() as stack:
                urls = direct
                if rtt:
                    proxies = stack.enter_context(LatencyProxies([a.port for a in apps], rtt=rtt))
                    urls = [f"http://127.0.0.1:{port}" for port in proxies.ports]
                variants: list[tuple[str, str | None]] = []
                if args.baseline_root:
                    variants.append(("spacerun@base", args.baseline_root))
                variants.append(("spacerun", None))
                if args.gradio_client:
                    variants.append(("gradio_client", None))
                for kind, root in variants:
                    _wait_idle(direct)
                    for url in direct:
                        _call(url, "reset")
                    run = _run_child(kind.split("@")[0], args.jobs, urls, root)
                    _wait_idle(direct)  # a hedge's loser runs to its end
                    row = measure(direct, urls, delays, args.jobs, run)
                    row.update(fleet=label, rtt=rtt, client=kind)
                    rows.append(row)
                    print(_format(row), file=sys.stderr, flush=True)
    finally:
        for app in apps:
            app.stop()
    return rows


HEADER = (
    "| fleet | RTT ms | client | wall s | of capacity | busy fast, middle, slow | tail s "
    "| calls per replica | extra calls | duplicated app s | hedges | hedge app s (summary) | ok "
    "| CPU ms/job |\n"
    "|---|---:|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---:|"
)


def _format(row: dict[str, Any]) -> str:
    busy = ", ".join(f"{b:.2f}" for b in row["busy"])
    calls = " / ".join(str(c) for c in row["calls"])
    duplicated = "" if row["duplicated_s"] is None else f"{row['duplicated_s']:.1f}"
    return (
        f"| {row['fleet']} | {1000 * row['rtt']:.0f} | {row['client']} | {row['wall']:.1f} "
        f"| {row['capacity']:.2f} | {busy} | {row['tail']:.2f} | {calls} | {row['extra_calls']} "
        f"| {duplicated} "
        f"| {row['hedges']} | {row['hedge_seconds']:.1f} | {row['ok']} | {row['cpu_ms']:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rtt", type=float, nargs="+", default=[0.0, 0.05, 0.15])
    parser.add_argument("--baseline-root", help="also run this other checkout (as @base)")
    parser.add_argument("--gradio-client", action="store_true")
    parser.add_argument("--slow-tail", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("KIND", "N", "URLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, urls = args.child
        child(kind, int(n), urls.split(","), args.baseline_root)
        return
    rows = _runs("0.05/0.25/1.0 s", DELAYS, args.rtt, args)
    if args.slow_tail:
        args.gradio_client = False
        rows += _runs("0.05/0.25/5.0 s", SLOW_TAIL, [0.0], args)
    print(f"{args.jobs} rows, run.concurrency {SLOTS}, concurrency_limit {SLOTS} per replica\n")
    print(HEADER)
    for row in rows:
        print(_format(row))


if __name__ == "__main__":
    main()
