"""How fast a run folder with a million finished rows is resumed.

Generates a results.jsonl of realistic records in a temporary folder (most keys
ok, some failed once and ok after a resume, some still failed), then measures,
each in a fresh subprocess so peak memory is its own:

- `store`: `ResultsStore.open` (lock, torn-line check, index of key -> status) on a
  folder without an index snapshot (as a run killed by kill -9 leaves it): a scan of
  the whole file;
- `snapshot`: the same on the folder as a closed store leaves it, with
  `cache/index.bin` (read back, checked against a CRC-32 of the file);
- `status`: `read_status` (what `spacerun status` does);
- `naive`: the baseline, `json.loads` of every line into a key -> status dict.

Time is measured without tracing; peak Python memory comes from a second run
under tracemalloc (which slows allocation, so its time is not reported), peak
RSS from getrusage.

    python bench/bench_resume.py              # 1,000,000 rows
    python bench/bench_resume.py --rows 200000 --keep runs/bench
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.store import RecordStatus, ResultRecord, ResultsStore  # noqa: E402

MODES = ("store", "snapshot", "status", "naive")


def generate(run_dir: Path, rows: int, seed: int = 7) -> int:
    """Write `rows` keys' records to run_dir/results.jsonl; returns the number of lines.

    About 3% of the keys failed in an earlier session and are ok at the end of
    the file (so they have two lines), 1% are still failed.
    """
    rng = random.Random(seed)
    templates = {status: _template(status) for status in (RecordStatus.OK, RecordStatus.ERROR)}
    run_dir.mkdir(parents=True, exist_ok=True)
    retried: list[int] = []
    lines = 0
    with open(run_dir / "results.jsonl", "wb") as out:
        chunk: list[bytes] = []
        for row in range(rows):
            roll = rng.random()
            status = RecordStatus.ERROR if roll < 0.04 else RecordStatus.OK
            if roll < 0.03:
                retried.append(row)
            chunk.append(_line(templates[status], row, rng))
            if len(chunk) >= 10_000:
                out.write(b"".join(chunk))
                lines, chunk = lines + len(chunk), []
        chunk.extend(_line(templates[RecordStatus.OK], row, rng) for row in retried)
        out.write(b"".join(chunk))
        lines += len(chunk)
    return lines


def _template(status: RecordStatus) -> str:
    # A real record, with the fields that vary replaced by %-placeholders.
    ok = status is RecordStatus.OK
    record = ResultRecord(
        key="@KEY@",
        row=123456789,
        status=status,
        inputs={"audio": "data/clips/clip_@ROW@.wav", "language": "en", "beam_size": 5},
        outputs={"transcript": "@TEXT@", "segments": "files/@KEY@/segments.json"} if ok else None,
        error_type=None if ok else "AppError",
        error_message=None if ok else "CUDA out of memory. Tried to allocate 20.00 MiB",
        attempts=1 if ok else 3,
        causes=() if ok else ("ConnectionError", "QueueFull"),
        replica="http://127.0.0.1:@PORT@/",
        queue_time=1.25,
        run_time=2.5,
        finished_at="2026-11-27T09:41:15.405+00:00",
        submitted_at="2026-11-27T09:41:11.655+00:00",
    )
    text = record.to_line().decode().replace("%", "%%")
    for old, new in (("@KEY@", "%(key)s"), ("123456789", "%(row)d"), ("@ROW@", "%(row)07d"),
                     ("@TEXT@", "%(text)s"), ("@PORT@", "%(port)d"), ("1.25", "%(queue)s"),
                     ("2.5", "%(run)s")):  # fmt: skip
        text = text.replace(old, new)
    return text


def _line(template: str, row: int, rng: random.Random) -> bytes:
    fields = {
        "key": hashlib.sha256(str(row).encode()).hexdigest()[:20],  # as expand.py makes them
        "row": row,
        "text": " ".join(rng.choices(_WORDS, k=rng.randint(5, 25))),
        "port": 7860 + row % 4,
        "queue": round(rng.uniform(0, 5), 3),
        "run": round(rng.uniform(0.5, 3), 3),
    }
    return (template % fields).encode()


_WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog"]


def measure(mode: str, run_dir: Path, trace: bool) -> dict[str, float]:
    """Run one mode once; seconds, CPU seconds and peak memory."""
    snapshot = run_dir / "cache" / "index.bin"
    if mode == "store":
        snapshot.unlink(missing_ok=True)
    elif mode == "snapshot" and not snapshot.exists():
        ResultsStore.open(run_dir).close()  # closing saves it
    if trace:
        tracemalloc.start()
    wall, cpu = time.perf_counter(), time.process_time()
    if mode in ("store", "snapshot"):
        store = ResultsStore.open(run_dir)
        keys = len(store)
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
        store.close()  # saving the snapshot is the end of the run that opened it: not timed
    elif mode == "status":
        from runner.store import read_status  # imports pandas: only in this mode

        keys = read_status(run_dir).keys
    else:
        index: dict[str, str] = {}
        with open(run_dir / "results.jsonl", "rb") as handle:
            for line in handle:
                data = json.loads(line)
                index[data["key"]] = data["status"]
        keys = len(index)
    if mode not in ("store", "snapshot"):
        seconds, cpu_seconds = time.perf_counter() - wall, time.process_time() - cpu
    result = {
        "seconds": seconds,
        "cpu": cpu_seconds,
        "keys": keys,
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if trace:
        result["traced_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    return result


def run_child(mode: str, run_dir: Path, trace: bool) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, "--dir", str(run_dir)]
    if trace:
        command.append("--trace")
    output = subprocess.run(command, check=True, capture_output=True)
    return dict(json.loads(output.stdout))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per mode (best shown)")
    parser.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--trace", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.dir, args.trace)))
        return
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        run_dir = args.keep or Path(tmp) / "run"
        started = time.perf_counter()
        lines = generate(run_dir, args.rows)
        size = (run_dir / "results.jsonl").stat().st_size
        print(f"generated {lines:,} lines for {args.rows:,} keys, {size / 2**20:.0f} MiB, "
              f"in {time.perf_counter() - started:.1f} s")  # fmt: skip
        print(f"{'mode':8} {'seconds':>8} {'cpu s':>8} {'peak RSS MB':>12} {'traced MB':>10}")
        best: dict[str, dict[str, float]] = {}
        for mode in MODES:
            runs = [run_child(mode, run_dir, trace=False) for _ in range(args.repeat)]
            best[mode] = min(runs, key=lambda r: r["seconds"])
            traced = run_child(mode, run_dir, trace=True)["traced_mb"]
            assert best[mode]["keys"] == args.rows, best[mode]
            b = best[mode]
            print(f"{mode:8} {b['seconds']:8.3f} {b['cpu']:8.3f} "
                  f"{b['rss_mb']:12.0f} {traced:10.0f}")  # fmt: skip
        for mode in ("store", "snapshot"):
            ratio = best["naive"]["seconds"] / best[mode]["seconds"]
            print(f"{mode}: {ratio:.1f}x faster than json.loads per line")


if __name__ == "__main__":
    main()
