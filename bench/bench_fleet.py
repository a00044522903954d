"""An uneven fleet, measured on the servers' clock: every app slot busy, and the tail.

    python bench/bench_fleet.py [--jobs 1000] [--rtt 0 0.05 0.15] [--repeat N]
                                [--baseline-root OTHER_CHECKOUT] [--sweep K ...]
                                [--gradio-client] [--slow-tail]

Three copies of the `bench` test app, each `concurrency_limit=2`, taking 0.05 s,
0.25 s and 1.0 s a call (40 + 8 + 2 = 50 calls/s of app capacity), get the same batch
through the whole `spacerun run` path with `run.concurrency: 2` (and the manifest's
defaults otherwise: queue-ahead and hedging as shipped). With `--rtt`, each replica
sits behind `bench/latency_proxy.py` adding that round trip (0: direct). With
`--baseline-root`, the same run from another checkout (`@base`) goes right before
ours, against the same servers: side by side. `--sweep K` adds runs with `queue_ahead`
fixed at K (a queue kept fed whatever it costs: what the servers give then).
`--gradio-client` adds a 6-thread pool over one `Client` per replica. `--slow-tail`
adds a run whose slow replica takes 5 s a call, where hedging has something to do: its
duplicated app time is reported. `--repeat N` runs every client N times, in turn, and
reports each figure's median.

Every client first makes a short run of a few rows that is not measured (imports, the
report, first connections: what a run costs once is not spread over its jobs), and the
apps forget those calls. Every figure then comes from the apps' own records of each
call (start and end, on the machine's monotonic clock, `/spans`): wall is the first
call's start to the last one's end; "of capacity" is the ideal time (jobs / 50
calls/s) over it. Rows are left to send until the client sent its last one (its n-th
`queue/join`, half a round trip before the app has it): "busy" is each replica's app
seconds over its 2 slots x that time, and "slot idle ms per call" the slots' idle
time then over the calls started, which is the round trip a client did not hide plus
the server's own hop from one call's end to the next one's start. "server CPU ms per
call" is each app process's CPU during the run (Linux `/proc`) over its calls: gradio's
own work per call, on the same two cores as everything else. "tail" is from the last
call's start to the last end. Extra calls are the apps' calls beyond one per row, and
their app seconds. Client CPU is the run's own process (`CPU ms/job`). Each client
runs in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
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
#: Rows of the unmeasured run each client makes first.
WARM_ROWS = 6


def _manifest(urls: list[str], n: int, queue_ahead: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    (folder / "rows.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(n)))
    replicas = "".join(f"    - url: {url}\n" for url in urls)
    # The shipped default is not written out: a baseline from before the key ran too.
    ahead = "" if queue_ahead == "default" else f"  queue_ahead: {queue_ahead}\n"
    manifest = folder / "batch.yaml"
    manifest.write_text(
        "name: fleet\napp:\n  endpoint: /predict\n  replicas:\n"
        f"{replicas}inputs:\n  csv: {folder / 'rows.csv'}\n"
        f"run:\n  concurrency: {SLOTS}\n  timeout: 120s\n{ahead}"
        f"output:\n  dir: {folder / 'out'}\n"
    )
    return manifest


def _record_joins() -> list[float]:
    """The clock time of every `queue/join` this process sends from now on."""
    from jobs._session import Session

    joins: list[float] = []
    join = Session.join

    async def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        joins.append(time.monotonic())
        return await join(self, *args, **kwargs)

    Session.join = recorded  # type: ignore[method-assign]
    return joins


def run_spacerun(urls: list[str], n: int, queue_ahead: str = "default") -> dict[str, Any]:
    from runner.run import RunOptions, run

    # A short run first, whose calls the apps then forget: what a run costs once
    # (imports, the report, the first connections) is not counted against each job.
    run(_manifest(urls, WARM_ROWS, queue_ahead), RunOptions(progress="off", handle_signals=False))
    _wait_idle(urls)  # a hedge's loser runs to its end
    for url in urls:
        _call(url, "reset")
    manifest = _manifest(urls, n, queue_ahead)
    folder = manifest.parent
    joins = _record_joins()
    servers0, cpu0, wall0 = _server_cpu(), time.process_time(), time.perf_counter()
    run(manifest, RunOptions(progress="off", handle_signals=False))
    result: dict[str, Any] = {
        "wall": time.perf_counter() - wall0,
        "cpu": time.process_time() - cpu0,
        "server_cpu": [b - a for a, b in zip(servers0, _server_cpu(), strict=True)],
        # Retries and hedges' copies come after every row was sent once.
        "sent_all": sorted(joins)[n - 1] if len(joins) >= n else None,
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
    for client, url in zip(clients, urls, strict=True):
        client.predict("warm-up", api_name="/predict")
        _call(url, "reset")
    servers0, cpu0, wall0 = _server_cpu(), time.process_time(), time.perf_counter()

    def one(i: int) -> bool:
        with contextlib.suppress(BaseException):
            return bool(clients[i % len(clients)].predict(str(i), api_name="/predict") == str(i))
        return False

    with ThreadPoolExecutor(SLOTS * len(urls)) as pool:
        ok = sum(pool.map(one, range(n)))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    server_cpu = [b - a for a, b in zip(servers0, _server_cpu(), strict=True)]
    for client in clients:
        client.close()
    return {
        "ok": ok,
        "wall": wall,
        "cpu": cpu,
        "server_cpu": server_cpu,
        "hedges": 0,
        "hedge_seconds": 0.0,
    }


def _server_cpu() -> list[float]:
    """CPU seconds each app's process has used (Linux: `/proc`), from `BENCH_FLEET_PIDS`."""
    seconds = []
    for pid in os.environ.get("BENCH_FLEET_PIDS", "").split(","):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        seconds.append((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    return seconds


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
    direct: list[str],
    urls: list[str],
    delays: tuple[float, ...],
    n: int,
    run: dict[str, Any],
    rtt: float,
) -> dict[str, Any]:
    """The figures of one run, from the apps' records of their calls."""
    spans = [_call(url, "spans")["spans"] for url in direct]
    everything = [s for per in spans for s in per]
    start, end = min(s[0] for s in everything), max(s[1] for s in everything)
    last_start = max(s[0] for s in everything)
    # Rows are left to send until the client sent the last one (it reaches the app half
    # a round trip later); what the apps do after that is the tail.
    sent_all = last_start if run.get("sent_all") is None else run["sent_all"] + rtt / 2
    backlog = max(1e-9, sent_all - start)
    capacity = sum(SLOTS / d for d in delays)
    busy = [
        sum(min(e, sent_all) - b for b, e in per if b < sent_all) / (SLOTS * backlog)
        for per in spans
    ]
    calls = [len(per) for per in spans]
    # A slot's idle time per call while rows were left: the round trip a client did not
    # hide plus the server's own hop from one call's end to the next one's start.
    idle = [
        1000 * (1 - b) * SLOTS * backlog / max(1, sum(1 for s in per if s[0] < sent_all))
        for b, per in zip(busy, spans, strict=True)
    ]
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
        "idle_ms": idle,
        "server_cpu_ms": [
            1000 * c / max(1, k) for c, k in zip(run["server_cpu"], calls, strict=True)
        ],
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
    if kind == "gradio_client":
        print(json.dumps(run_gradio_client(urls, n)))
    else:
        print(json.dumps(run_spacerun(urls, n, kind.partition(":")[2] or "default")))


def _run_child(
    kind: str, n: int, urls: list[str], root: str | None, pids: list[int]
) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, str(n), ",".join(urls)]
    if root is not None:
        command += ["--baseline-root", root]
    env = dict(os.environ, BENCH_FLEET_PIDS=",".join(map(str, pids)))
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=3600, check=False, env=env
    )
    if out.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _fleet(delays: tuple[float, ...], *, analytics: bool) -> list[Any]:
    from support.apps import start_app

    env = {"BENCH_CONCURRENCY": str(SLOTS)}
    if not analytics:
        # gradio 6 rebuilds a pandas DataFrame of the last 10,000 events after every call
        # (its monitoring summary): an O(calls served) cost per call, on the server's
        # event loop, that makes the same servers slower run after run and the last
        # client measured pay the most. Computed once per 10^9 calls, it is gone.
        env["GRADIO_ANALYTICS_CACHE_FREQUENCY"] = str(10**9)
    return [start_app("bench", env={**env, "BENCH_DELAY": str(d)}) for d in delays]


def _variants(args: argparse.Namespace) -> list[tuple[str, str, str | None]]:
    """(label, child kind, checkout) of every client measured at each round trip."""
    variants: list[tuple[str, str, str | None]] = []
    if args.baseline_root:
        variants.append(("spacerun@base", "spacerun", args.baseline_root))
    variants.append(("spacerun", "spacerun", None))
    variants += [(f"spacerun, queue_ahead {k}", f"spacerun:{k}", None) for k in args.sweep]
    if args.gradio_client:
        variants.append(("gradio_client", "gradio_client", None))
    return variants


def _runs(
    label: str, delays: tuple[float, ...], rtts: list[float], args: argparse.Namespace
) -> list[dict[str, Any]]:
    from latency_proxy import LatencyProxies

    apps = _fleet(delays, analytics=args.gradio_analytics)
    rows = []
    try:
        direct = [app.url for app in apps]
        for rtt in rtts:
            with contextlib.ExitStack() as stack:
                urls = direct
                if rtt:
                    proxies = stack.enter_context(LatencyProxies([a.port for a in apps], rtt=rtt))
                    urls = [f"http://127.0.0.1:{port}" for port in proxies.ports]
                taken: dict[str, list[dict[str, Any]]] = {}
                # Repeats go round the clients, so a change in the machine's load
                # falls on all of them alike.
                for _ in range(args.repeat):
                    for name, kind, root in _variants(args):
                        _wait_idle(direct)
                        run = _run_child(kind, args.jobs, urls, root, [app.pid for app in apps])
                        _wait_idle(direct)  # a hedge's loser runs to its end
                        row = measure(direct, urls, delays, args.jobs, run, rtt)
                        row.update(fleet=label, rtt=rtt, client=name)
                        taken.setdefault(name, []).append(row)
                        print(_format(row), file=sys.stderr, flush=True)
                rows += [_median(runs) for runs in taken.values()]
    finally:
        for app in apps:
            app.stop()
    return rows


def _median(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure's median over the repeats (the run of median wall for the counts)."""
    middle = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
    row = dict(middle, repeats=len(runs))
    for key in ("wall", "capacity", "tail", "cpu_ms"):
        row[key] = statistics.median(r[key] for r in runs)
    for key in ("busy", "idle_ms", "server_cpu_ms"):
        row[key] = [statistics.median(r[key][i] for r in runs) for i in range(len(row[key]))]
    return row


HEADER = (
    "| fleet | RTT ms | client | wall s | of capacity | busy fast, middle, slow "
    "| slot idle ms per call | server CPU ms per call | tail s | calls per replica "
    "| extra calls (app s) | hedges (app s, summary) | ok | CPU ms/job |\n"
    "|---|---:|---|---:|---:|---|---|---|---:|---|---:|---:|---:|---:|"
)


def _format(row: dict[str, Any]) -> str:
    def each(values: list[float], spec: str) -> str:
        return ", ".join(format(v, spec) for v in values)

    calls = " / ".join(str(c) for c in row["calls"])
    duplicated = "" if row["duplicated_s"] is None else f" ({row['duplicated_s']:.1f})"
    return (
        f"| {row['fleet']} | {1000 * row['rtt']:.0f} | {row['client']} | {row['wall']:.1f} "
        f"| {row['capacity']:.2f} | {each(row['busy'], '.2f')} | {each(row['idle_ms'], '.1f')} "
        f"| {each(row['server_cpu_ms'], '.1f')} | {row['tail']:.2f} | {calls} "
        f"| {row['extra_calls']}{duplicated} | {row['hedges']} ({row['hedge_seconds']:.1f}) "
        f"| {row['ok']} | {row['cpu_ms']:.2f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rtt", type=float, nargs="+", default=[0.0, 0.05, 0.15])
    parser.add_argument("--baseline-root", help="also run this other checkout (as @base)")
    parser.add_argument("--gradio-client", action="store_true")
    parser.add_argument("--slow-tail", action="store_true")
    parser.add_argument(
        "--gradio-analytics",
        action="store_true",
        help="leave gradio's per-call monitoring summary on (its default)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each client (medians)")
    parser.add_argument(
        "--sweep",
        nargs="*",
        default=[],
        metavar="K",
        help="also run with queue_ahead fixed at each K: what the servers give when their "
        "queues are kept fed",
    )
    parser.add_argument("--child", nargs=3, metavar=("KIND", "N", "URLS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, n, urls = args.child
        child(kind, int(n), urls.split(","), args.baseline_root)
        return
    rows = _runs("0.05/0.25/1.0 s", DELAYS, args.rtt, args)
    if args.slow_tail:
        args.gradio_client, args.sweep = False, []
        rows += _runs("0.05/0.25/5.0 s", SLOW_TAIL, [0.0], args)
    print(f"{args.jobs} rows, run.concurrency {SLOTS}, concurrency_limit {SLOTS} per replica\n")
    print(HEADER)
    for row in rows:
        print(_format(row))


if __name__ == "__main__":
    main()
