"""Reading a Hugging Face dataset with an Audio column, and pushing results as one.

Read: a Parquet file of ROWS rows (an `audio` column as `datasets` stores Audio, a
distinct short WAV per row, and a `text` column), read through `runner.inputs.iter_rows`
to the last row, each in a fresh subprocess (peak RSS is its own, `VmHWM`):

- `dataset`: `inputs.dataset: bench/speech` from the Hub stand-in (tests/support/hub.py,
  in this process) through `datasets` streaming; each audio cell written to `media/` (as
  a run writes it when its row is sent);
- `parquet`: `inputs.parquet:` of the same file on local disk (the audio cells stay
  dicts of bytes: nothing is written), the baseline.

Push: a run folder of PUSH results (each with a distinct WAV input in `media/` and a text
output) pushed to the stand-in with `runner.push.push_results`: time and bytes.

    python bench/bench_datasets.py                       # 100,000 rows, 10,000 results
    python bench/bench_datasets.py --rows 20000 --push 2000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.hub import HubServer  # noqa: E402

TOKEN = "hf_bench_token"

READ = """
import json, sys, time
from pathlib import Path
from runner.inputs import iter_rows
from runner.inputs._media import MediaFile
from runner.manifest import manifest_from_data
inputs, run = json.loads(sys.argv[1]), sys.argv[2]
data = {"app": {"url": "http://127.0.0.1:9"}, "inputs": inputs, "output": {"dir": run}}
manifest = manifest_from_data(data, path=Path(run).parent / "m.yaml", label="m")
start = time.perf_counter()
rows = 0
for row in iter_rows(manifest):
    for value in row.values.values():
        if isinstance(value, MediaFile):
            value.write()  # as a run does when the row is sent
    rows += 1
seconds = time.perf_counter() - start
with open("/proc/self/status") as status:
    peak = next(int(l.split()[1]) for l in status if l.startswith("VmHWM:"))
print(json.dumps({"rows": rows, "seconds": seconds, "peak_mb": peak / 1024}))
"""


def wav(index: int, samples: int = 400) -> bytes:
    """A 16 kHz mono 16-bit WAV of `samples` samples, distinct for each index."""
    pcm = struct.pack(f"<{samples}h", *((index * 7 + i * 31) % 30000 for i in range(samples)))
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF", 36 + len(pcm), b"WAVE", b"fmt ", 16, 1, 1, 16000, 32000, 2, 16,
        b"data", len(pcm),
    )  # fmt: skip
    return header + pcm


def dataset_parquet(rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Audio, Features, Value

    features = Features({"audio": Audio(), "text": Value("string")})
    out = io.BytesIO()
    with pq.ParquetWriter(out, features.arrow_schema) as writer:
        for start in range(0, rows, 10_000):
            count = min(10_000, rows - start)
            batch = {
                "audio": [
                    {"bytes": wav(i), "path": f"{i}.wav"} for i in range(start, start + count)
                ],
                "text": [f"sentence number {i}" for i in range(start, start + count)],
            }
            writer.write_table(pa.Table.from_pydict(batch, schema=features.arrow_schema))
    return out.getvalue()


def read(mode: str, inputs: dict[str, object], work: Path, hub: HubServer) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "HF_ENDPOINT": hub.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(work / "home"),
    }
    run = work / f"run-{mode}"
    done = subprocess.run(
        [sys.executable, "-c", READ, json.dumps(inputs), str(run)],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=3600,
    )
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def push_folder(folder: Path, results: int) -> None:
    from runner.store import RecordStatus, ResultRecord

    media = folder / "media"
    media.mkdir(parents=True)
    with open(folder / "results.jsonl", "wb") as handle:
        for i in range(results):
            audio = media / f"{i:08d}.wav"
            audio.write_bytes(wav(i))
            record = ResultRecord(
                key=f"{i:020x}",
                row=i,
                status=RecordStatus.OK,
                inputs={"audio": str(audio)},
                outputs={"Transcript": f"sentence number {i}"},
            )
            handle.write(record.to_line())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--push", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as tmp, HubServer() as hub:
        work = Path(tmp)
        hub.add_user("bench", token=TOKEN)
        data = dataset_parquet(args.rows)
        local = work / "speech.parquet"
        local.write_bytes(data)
        hub.add_dataset("bench/speech", {"data/train-00000-of-00001.parquet": data})
        load = os.getloadavg()[0]
        print(f"{args.rows:,} rows, {len(data) / 1e6:.1f} MB of Parquet; load {load:.2f}")
        cases = {
            "parquet": {"parquet": str(local)},
            "dataset": {"dataset": "bench/speech"},
        }
        found = {mode: read(mode, inputs, work, hub) for mode, inputs in cases.items()}
        for mode, got in found.items():
            assert got["rows"] == args.rows, got
            print(
                f"{mode:8} {got['rows'] / got['seconds']:9,.0f} rows/s "
                f"{got['seconds']:7.2f} s  peak RSS {got['peak_mb']:7.1f} MB"
            )
        ratio = found["parquet"]["seconds"] / found["dataset"]["seconds"]
        print(f"dataset reads at {ratio:.2f}x the speed of inputs.parquet")

        from runner.push import push_results

        folder = work / "push-run"
        push_folder(folder, args.push)
        start = time.perf_counter()
        report = push_results(folder, "bench/results", token=TOKEN, endpoint=hub.url)
        seconds = time.perf_counter() - start
        print(
            f"push of {args.push:,} results: {seconds:.2f} s, {report.bytes / 1e6:.2f} MB in "
            f"{len(report.shards)} shard(s); load {os.getloadavg()[0]:.2f}"
        )


if __name__ == "__main__":
    main()
