"""The echo batch over HTTPS with network latency: spacerun vs gradio_client.

    python bench/bench_tls.py [--rtt 0 0.02 0.1] [--jobs 600] [--replicas 3]
                              [--delay 0.05] [--concurrency 16] [--in-flight 16 32]

Real replicas are Spaces behind `https://*.hf.space`, tens to hundreds of ms away. This
makes a self-signed certificate (`openssl`), serves three copies of the `bench` test app
(a DELAY s endpoint with `concurrency_limit=CONCURRENCY`) over HTTPS with it, and puts
a TCP proxy in front of each that delays every byte by RTT/2 each way and counts the
TCP connections clients open (`latency_proxy.py`). For every RTT the same batch runs
through

* spacerun: `runner.scheduling.Scheduler` over a `ReplicaPool` of `jobs.AsyncClient`s
  (`ssl_verify=False`), IN_FLIGHT jobs per replica (the manifest's `concurrency`; 16 is
  the app's own limit, more hides the round trips);
* gradio_client: one `Client(ssl_verify=False)` per replica, `Client.submit` for every
  job round-robin, then `job.result()` for each.

Each client runs in a fresh subprocess (CPU and peak RSS are its own); connecting and
one warm-up call per replica come before the timed batch. Reported: jobs/s and its
ratio to gradio_client's, time to the first result, client CPU per job, TCP connections
opened (the whole client process, connect included), peak RSS, failed jobs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from bench_runner import _peak_rss_mb  # noqa: E402
from latency_proxy import LatencyProxies  # noqa: E402


@dataclass(frozen=True, slots=True)
class _Sub:
    key: str
    row: int
    inputs: dict[str, Any]


def run_spacerun(urls: list[str], n: int, in_flight: int) -> dict[str, Any]:
    import anyio

    from jobs import AsyncClient
    from runner.scheduling import AdaptiveLimit, Outcome, Replica, ReplicaPool, Scheduler
    from runner.store import RecordStatus

    result: dict[str, Any] = {}

    async def main() -> None:
        async with contextlib.AsyncExitStack() as stack:
            replicas = []
            for i, url in enumerate(urls):
                client = await AsyncClient.connect(url, download_files=False, ssl_verify=False)
                stack.push_async_callback(client.aclose)
                await client.predict("warm-up", api_name="/predict")
                limit = AdaptiveLimit(maximum=in_flight)
                replicas.append(Replica(name=f"r{i}", client=client, limit=limit))
            ok = 0
            first: list[float] = []

            def on_outcome(outcome: Outcome) -> None:
                nonlocal ok
                if not first:
                    first.append(time.perf_counter())
                ok += (
                    outcome.status is RecordStatus.OK
                    and outcome.value == outcome.submission.inputs["x"]
                )

            pool = ReplicaPool(replicas)
            scheduler = Scheduler(pool, on_outcome=on_outcome, endpoint="/predict")
            subs = [_Sub(str(i), i, {"x": str(i)}) for i in range(n)]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            async with pool.probing():
                await scheduler.run(subs)
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            result.update(ok=ok, wall=wall, cpu=cpu, first=first[0] - wall0)

    anyio.run(main)
    result["rss_mb"] = _peak_rss_mb()
    return result


def run_gradio_client(urls: list[str], n: int, in_flight: int) -> dict[str, Any]:
    from gradio_client import Client

    clients = [Client(url, verbose=False, ssl_verify=False) for url in urls]
    for client in clients:
        client.predict("warm-up", api_name="/predict")
    first: list[float] = []
    lock = threading.Lock()

    def on_result(_value: Any) -> None:
        with lock:
            if not first:
                first.append(time.perf_counter())

    cpu0, wall0 = time.process_time(), time.perf_counter()
    jobs = [
        clients[i % len(clients)].submit(str(i), api_name="/predict", result_callbacks=[on_result])
        for i in range(n)
    ]
    ok = 0
    for i, job in enumerate(jobs):
        # A failure (gradio_client's spurious CancelledError too) counts as not ok.
        with contextlib.suppress(BaseException):
            ok += job.result() == str(i)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    for client in clients:
        client.close()
    ttfr = first[0] - wall0 if first else wall
    return {"ok": ok, "wall": wall, "cpu": cpu, "first": ttfr, "rss_mb": _peak_rss_mb()}


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed RSA-2048 certificate for 127.0.0.1 (what hf.space serves is RSA too)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _run_child(kind: str, n: int, in_flight: int, urls: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind, str(n), str(in_flight), ",".join(urls)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=1800, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} child failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _wait_idle(ports: list[int]) -> None:
    # A failed child may leave jobs queued; the next client must find the servers idle.
    import httpx

    for port in ports:
        url = f"https://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10, verify=False, trust_env=False) as http:
            prefix = http.get("/config").json().get("api_prefix", "")
            deadline = time.monotonic() + 60
            while http.get(f"{prefix}/queue/status").json()["queue_size"] and (
                time.monotonic() < deadline
            ):
                time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rtt", type=float, nargs="+", default=[0.0, 0.02, 0.1])
    parser.add_argument("--jobs", type=int, default=600)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[16, 32])
    parser.add_argument(
        "--child", nargs=4, metavar=("KIND", "N", "IN_FLIGHT", "URLS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        kind, n, in_flight, urls = args.child
        runner = run_spacerun if kind == "spacerun" else run_gradio_client
        print(json.dumps(runner(urls.split(","), int(n), int(in_flight))))
        return

    from support.apps import start_apps

    env = {"BENCH_DELAY": str(args.delay), "BENCH_CONCURRENCY": str(args.concurrency)}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-tls-") as tmp:
        tls = make_certificate(Path(tmp))
        apps = start_apps(["bench"] * args.replicas, env=env, tls=tls, ready_timeout=300)
        try:
            ports = [app.port for app in apps]
            for rtt in args.rtt:
                with LatencyProxies(ports, rtt=rtt) as proxies:
                    urls = [f"https://127.0.0.1:{port}" for port in proxies.ports]
                    cases = [("spacerun", k) for k in args.in_flight] + [("gradio_client", 0)]
                    for kind, in_flight in cases:
                        _wait_idle(ports)
                        proxies.reset()
                        run = _run_child(kind, args.jobs, in_flight, urls)
                        rows.append(_row(kind, in_flight, rtt, run, proxies.connections, args.jobs))
                        print(_format_row(rows[-1], ""), file=sys.stderr, flush=True)
        finally:
            for app in apps:
                app.stop()
    print(_table(rows, args))


def _row(
    kind: str, in_flight: int, rtt: float, run: dict[str, Any], connections: int, n: int
) -> dict[str, Any]:
    label = f"spacerun, {in_flight} in flight" if kind == "spacerun" else kind
    return {
        "kind": kind,
        "label": label,
        "rtt": rtt,
        "rate": n / run["wall"],
        "first": run["first"],
        "cpu_ms": run["cpu"] / n * 1000,
        "connections": connections,
        "rss": run["rss_mb"],
        "failed": n - run["ok"],
    }


def _format_row(row: dict[str, Any], ratio: str) -> str:
    return (
        f"| {row['rtt'] * 1000:g} | {row['label']} | {row['rate']:.0f} | {ratio} | "
        f"{row['first']:.3f} | {row['cpu_ms']:.2f} | {row['connections']} | "
        f"{row['rss']:.0f} | {row['failed']} |"
    )


def _table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    baseline = {r["rtt"]: r for r in rows if r["kind"] == "gradio_client"}
    head = [
        f"HTTPS (self-signed RSA-2048), {args.replicas} replicas, {args.jobs} jobs, "
        f"{args.delay * 1000:g} ms endpoint, concurrency_limit={args.concurrency}; "
        "each client in its own process",
        "",
        "| RTT ms | client | jobs/s | jobs/s vs gradio_client | first result s |"
        " CPU ms/job | TCP connections | peak MB | failed |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines = []
    for row in rows:
        other = baseline.get(row["rtt"])
        ratio = f"{row['rate'] / other['rate']:.2f}x" if other and row is not other else ""
        lines.append(_format_row(row, ratio))
    return "\n".join(head + lines)


if __name__ == "__main__":
    main()
