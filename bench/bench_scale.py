"""Scale: a one-million-row CSV manifest against fast local apps (no delay).

    python bench/bench_scale.py memory [--rows 1000000] [--seconds 180]
    python bench/bench_scale.py full [--rows 1000000] [--left 20000]
    python bench/bench_scale.py throughput [--replicas 1 4 8] [--seconds 60]

Every case runs `spacerun run` (`python -m runner.cli run`, JSON progress) in a fresh
subprocess under `tests/support/peak_wrapper.py`, so its peak RSS (`VmHWM`) is its own,
against copies of `tests/apps/bench.py` with `BENCH_DELAY=0` (`concurrency_limit=16`,
manifest `run.concurrency: 16`, retries 2, a 60 s timeout, results on disk). While it
runs, this process samples the child's `VmRSS` and CPU time and every app's CPU time
from `/proc` every `--every` seconds.

- `memory`: a fresh run of the ROWS-row manifest for `--seconds` after its first job
  (then Ctrl-C, as a user would): RSS over time, so its growth per 100,000 jobs shows.
- `full`: a run folder with ROWS - LEFT rows already ok (as `bench_resume_run.py` makes
  it: stamp, key cache, results.jsonl), resumed to the end: the peak with the whole
  index in memory, the time to its first job, and the report over ROWS records built
  at the end by the same process.
- `throughput`: a fresh run for `--seconds` per replica count: the jobs/s it sustains
  (over the window after the first 10 s), the client's CPU as a fraction of one core
  and the servers' together: on a 2-core machine the servers compete with the client.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from support.apps import RunningApp, start_apps  # noqa: E402

WRAPPER = ROOT / "tests" / "support" / "peak_wrapper.py"
TICK = os.sysconf("SC_CLK_TCK")
WARM_UP = 10.0  # seconds of a throughput run not counted (connecting, first batches)
#: More arguments for `spacerun run` (`--no-live-report` from `--no-live`).
EXTRA_RUN_ARGS: list[str] = []


@dataclass
class Sample:
    t: float  # seconds since the child started
    rss_mb: float
    cpu: float  # child CPU seconds
    servers_cpu: float  # all apps' CPU seconds
    ok: int  # ok outcomes so far (from the JSON progress)


@dataclass
class Measured:
    samples: list[Sample] = field(default_factory=list)
    first_job: float | None = None  # seconds from spawn to the first progress event
    peak_mb: float = 0.0
    returncode: int = 0
    wall: float = 0.0
    summary: str = ""
    write_bytes: int = 0


def _cpu_of(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _write_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/io") as io:
            for line in io:
                if line.startswith("write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def write_manifest(folder: Path, rows: int, urls: list[str]) -> Path:
    rows_csv = folder / "rows.csv"
    if not rows_csv.exists() or rows_csv.stat().st_size == 0:
        with open(rows_csv, "w") as out:
            out.write("x\n")
            out.writelines(f"row {i}\n" for i in range(rows))
    replicas = "".join(f"    - url: {url}\n" for url in urls)
    manifest = folder / "scale.yaml"
    manifest.write_text(
        "name: scale\napp:\n  endpoint: /predict\n  replicas:\n"
        f"{replicas}inputs:\n  csv: {rows_csv}\n"
        "run:\n  concurrency: 16\n  retries: 2\n  timeout: 60s\n"
        f"output:\n  dir: {folder / 'out'}\n"
    )
    return manifest


def run_child(
    manifest: Path, apps: list[RunningApp], *, seconds: float | None, every: float, log: Path
) -> Measured:
    """`spacerun run MANIFEST` in a measured child; Ctrl-C `seconds` after its first job
    (None: let it finish)."""
    command = [sys.executable, str(WRAPPER), "0", "-m", "runner.cli", "run", str(manifest)]
    command += ["--progress", "json", *EXTRA_RUN_ARGS]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    err = open(log, "w+")  # noqa: SIM115 - read back below
    started = time.monotonic()
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=manifest.parent, text=True
    )
    out = Measured()
    servers0 = sum(_cpu_of(app.pid) for app in apps)
    ok = 0
    position = 0
    interrupted = False
    try:
        while child.poll() is None:
            time.sleep(every)
            now = time.monotonic() - started
            err.seek(position)
            chunk = err.read()
            complete = chunk[: chunk.rfind("\n") + 1]
            position += len(complete)
            for line in complete.splitlines():
                if not line.startswith("{"):
                    continue
                event = json.loads(line)
                if event.get("event") == "progress":
                    ok = event["ok"]
                    if out.first_job is None and (event["in_flight"] or ok):
                        out.first_job = now
            try:
                out.write_bytes = _write_bytes(child.pid) or out.write_bytes
                rss = _rss_mb(child.pid)
                if not rss:
                    break  # exited: a zombie has no memory
                out.samples.append(
                    Sample(
                        now,
                        rss,
                        _cpu_of(child.pid),
                        sum(_cpu_of(app.pid) for app in apps) - servers0,
                        ok,
                    )
                )
            except (OSError, IndexError):
                break  # exited between poll and read
            if (
                seconds is not None
                and not interrupted
                and out.first_job is not None
                and now - out.first_job >= seconds
            ):
                child.send_signal(signal.SIGINT)
                interrupted = True
        out.returncode = child.wait(timeout=3600)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    out.wall = time.monotonic() - started
    err.seek(0)
    text = err.read()
    err.close()
    head, mark, tail = text.rpartition("\nPEAK_KB=")
    if mark:
        out.peak_mb = int(tail.strip()) / 1024
    out.summary = "\n".join(
        line for line in head.splitlines()[-12:] if not line.startswith("{")
    ).strip()
    return out


def _series(out: Measured, points: int = 12) -> str:
    """RSS against jobs done, at about `points` moments of the run."""
    samples = out.samples
    if not samples:
        return "(no samples)"
    step = max(1, len(samples) // points)
    picked = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    lines = [
        "| t s | ok jobs | RSS MiB | client CPU s | servers CPU s |",
        "|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {s.t:.0f} | {s.ok:,} | {s.rss_mb:.1f} | {s.cpu:.1f} | {s.servers_cpu:.1f} |"
        for s in picked
    ]
    return "\n".join(lines)


def _growth(out: Measured) -> str:
    """RSS growth per 100,000 ok jobs, from the first sample with 1% of the final jobs
    done (connected, first batches through) to the last one while it ran."""
    samples = [s for s in out.samples if s.ok]
    if len(samples) < 2:
        return "n/a"
    # The first sample at the final count: later ones are the summary and the report.
    last = next(s for s in samples if s.ok == samples[-1].ok)
    first = next(s for s in samples if s.ok >= last.ok / 100)
    if last.ok == first.ok:
        return "n/a"
    per = (last.rss_mb - first.rss_mb) / (last.ok - first.ok) * 100_000
    return (
        f"{per:+.1f} MiB per 100,000 jobs (RSS {first.rss_mb:.1f} at {first.ok:,} ok -> "
        f"{last.rss_mb:.1f} at {last.ok:,} ok)"
    )


def case_memory(args: argparse.Namespace, tmp: Path) -> None:
    apps = start_apps(["bench"] * args.replicas[0], env=_app_env(), ready_timeout=300)
    try:
        manifest = write_manifest(tmp, args.rows, [app.url for app in apps])
        out = run_child(
            manifest, apps, seconds=args.seconds, every=args.every, log=tmp / "memory.log"
        )
    finally:
        for app in apps:
            app.stop()
    running = max((s.rss_mb for s in out.samples), default=0.0)
    print(f"\nmemory: {args.rows:,}-row manifest, {args.replicas[0]} replica(s), Ctrl-C "
          f"{args.seconds:g} s after the first job")  # fmt: skip
    print(f"  first job after {out.first_job:.1f} s; exit {out.returncode}; wall {out.wall:.0f} s")
    print(f"  peak RSS (VmHWM, whole process): {out.peak_mb:.1f} MiB; highest sampled "
          f"VmRSS while running: {running:.1f} MiB")  # fmt: skip
    print(f"  growth: {_growth(out)}")
    print(_series(out))
    print(out.summary)


def case_full(args: argparse.Namespace, tmp: Path) -> None:
    from bench_resume_run import first_run_folder

    from runner.manifest import load_manifest

    apps = start_apps(["bench"] * args.replicas[0], env=_app_env(), ready_timeout=300)
    try:
        manifest_path = write_manifest(tmp, args.rows, [app.url for app in apps])
        manifest = load_manifest(manifest_path)
        done = args.rows - args.left
        print(f"setting up a run folder with {done:,} ok rows of {args.rows:,} ...", flush=True)
        first_run_folder(manifest, tmp / "out", done)
        out = run_child(manifest_path, apps, seconds=None, every=args.every, log=tmp / "full.log")
    finally:
        for app in apps:
            app.stop()
    running = [s for s in out.samples if s.ok < args.left]
    print(f"\nfull: resume of {done:,} ok rows + {args.left:,} to do, run to the end "
          f"({args.replicas[0]} replica(s))")  # fmt: skip
    print(f"  first job after {out.first_job or 0:.1f} s from spawn (Python start, imports "
          f"and connecting included); exit {out.returncode}; wall {out.wall:.0f} s")  # fmt: skip
    print(f"  peak RSS (VmHWM, report at the end included): {out.peak_mb:.1f} MiB; highest "
          f"sampled VmRSS while jobs ran: {max((s.rss_mb for s in running), default=0):.1f} "
          "MiB")  # fmt: skip
    print(_series(out))
    print(out.summary)


def case_throughput(args: argparse.Namespace, tmp: Path) -> None:
    apps = start_apps(["bench"] * max(args.replicas), env=_app_env(), ready_timeout=600)
    table = [
        "| replicas | jobs/s | client CPU (cores) | servers CPU (cores) | client CPU ms/job |"
        " disk writes kB/s | peak RSS MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    try:
        for replicas in args.replicas:
            folder = tmp / f"r{replicas}"
            folder.mkdir()
            (folder / "rows.csv").symlink_to(_rows_csv(tmp, args.rows))
            manifest = write_manifest(folder, args.rows, [app.url for app in apps[:replicas]])
            out = run_child(
                manifest,
                apps[:replicas],
                seconds=args.seconds,
                every=args.every,
                log=folder / "run.log",
            )
            row = _throughput_row(replicas, out)
            table.append(row)
            print(row, file=sys.stderr, flush=True)
    finally:
        for app in apps:
            app.stop()
    print(
        f"\nthroughput: fresh {args.rows:,}-row run, {args.seconds:g} s per case, window "
        f"after the first {WARM_UP:g} s of jobs; 0 ms endpoint, concurrency_limit=16"
    )
    print("\n".join(table))


def _rows_csv(tmp: Path, rows: int) -> Path:
    path = tmp / "rows.csv"
    if not path.exists():
        write_manifest(tmp, rows, [])
    return path


def _throughput_row(replicas: int, out: Measured) -> str:
    assert out.first_job is not None
    window = [s for s in out.samples if s.t >= out.first_job + WARM_UP and s.ok]
    a, b = window[0], window[-1]
    seconds = b.t - a.t
    jobs = b.ok - a.ok
    return (
        f"| {replicas} | {jobs / seconds:.0f} | {(b.cpu - a.cpu) / seconds:.2f} | "
        f"{(b.servers_cpu - a.servers_cpu) / seconds:.2f} | "
        f"{(b.cpu - a.cpu) / jobs * 1000:.2f} | {out.write_bytes / out.wall / 1000:.0f} | "
        f"{out.peak_mb:.0f} |"
    )


def _app_env() -> dict[str, str]:
    return {"BENCH_DELAY": "0", "BENCH_CONCURRENCY": "16"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=["memory", "full", "throughput"])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--left", type=int, default=20_000, help="full: rows left to run")
    parser.add_argument("--replicas", type=int, nargs="+", default=None)
    parser.add_argument("--every", type=float, default=1.0, help="sampling interval, s")
    parser.add_argument(
        "--no-live", action="store_true", help="runs with --no-live-report (to compare)"
    )
    args = parser.parse_args()
    if args.no_live:
        EXTRA_RUN_ARGS.append("--no-live-report")
    if args.replicas is None:
        args.replicas = [1, 4, 8] if args.case == "throughput" else [1]
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        {"memory": case_memory, "full": case_full, "throughput": case_throughput}[args.case](
            args, Path(tmp)
        )


if __name__ == "__main__":
    main()
