"""Expand and validate a one-million-row CSV manifest against a real local Gradio app.

    python bench/bench_expand.py            # 1,000,000 rows
    python bench/bench_expand.py --rows 200000

Starts a Gradio app in this process (text, count, scale, mode: the same kinds of
parameters a real batch has), reads its API over HTTP like the client, writes the CSV
and a manifest to a temp folder, then times three passes over every row:

- validate: `validate_submissions` (types, choices, required, defaults; no hashing);
- expand: `iter_submissions` (the same, plus the key of every submission);
- naive: pandas `read_csv` of the whole file and one dict per row (no checks at all).

It prints rows/s of each, the peak RSS after each (ru_maxrss, which only grows, so the
naive pass runs last), and the tracemalloc peak of a validate pass (slower: traced).
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gradio as gr
import pandas as pd

from jobs import AppSchema, Client
from runner.inputs import iter_submissions, validate_submissions
from runner.manifest import load_manifest


def predict(text: str, count: int, scale: float, mode: str) -> str:
    return f"{text} {count} {scale} {mode}"


def start_app() -> tuple[gr.Blocks, str]:
    with gr.Blocks() as demo:
        inputs = [
            gr.Textbox(label="Text"),
            gr.Number(label="Count", precision=0),
            gr.Slider(0, 10, value=1, label="Scale"),
            gr.Radio(["fast", "slow"], value="fast", label="Mode"),
        ]
        out = gr.Textbox()
        gr.Button().click(predict, inputs=inputs, outputs=out, api_name="predict")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}"


def read_schema(url: str) -> AppSchema:
    with Client(url) as client:
        return client.schema


def write_inputs(folder: Path, rows: int, url: str) -> Path:
    with open(folder / "rows.csv", "w", encoding="utf-8") as handle:
        handle.write("text,count,scale,mode\n")
        for i in range(rows):
            scale = "" if i % 5 == 0 else str(i % 10)  # some empty cells: defaults
            handle.write(f"sentence number {i},{i},{scale},{'slow' if i % 3 else 'fast'}\n")
    manifest = folder / "bench.yaml"
    manifest.write_text(f"app: {{url: '{url}', endpoint: /predict}}\ninputs: {{csv: rows.csv}}\n")
    return manifest


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    demo, url = start_app()
    try:
        schema = read_schema(url)
        with tempfile.TemporaryDirectory() as tmp:
            path = write_inputs(Path(tmp), args.rows, url)
            manifest = load_manifest(path)
            size = (Path(tmp) / "rows.csv").stat().st_size
            print(f"{args.rows:,} rows, {size / 1e6:.1f} MB of CSV; RSS {peak_rss_mb():.0f} MB")

            start = time.perf_counter()
            report = validate_submissions(manifest, schema)
            validate_s = time.perf_counter() - start
            assert report.ok and report.submissions == args.rows, report.format()
            print(f"validate: {args.rows / validate_s:>10,.0f} rows/s  ({validate_s:.1f} s), "
                  f"peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip

            start = time.perf_counter()
            count = sum(1 for _ in iter_submissions(manifest, schema))
            expand_s = time.perf_counter() - start
            assert count == args.rows
            print(f"expand:   {args.rows / expand_s:>10,.0f} rows/s  ({expand_s:.1f} s), "
                  f"peak RSS {peak_rss_mb():.0f} MB")  # fmt: skip

            tracemalloc.start()
            validate_submissions(manifest, schema)
            _, traced_peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"validate tracemalloc peak: {traced_peak / 1e6:.2f} MB")

            rss_before_naive = peak_rss_mb()
            start = time.perf_counter()
            frame = pd.read_csv(Path(tmp) / "rows.csv", keep_default_na=False, dtype=str)
            naive_rows = [
                dict(zip(frame.columns, values, strict=True))
                for values in frame.itertuples(index=False)
            ]
            naive_s = time.perf_counter() - start
            grown = peak_rss_mb() - rss_before_naive
            print(f"naive:    {len(naive_rows) / naive_s:>10,.0f} rows/s  ({naive_s:.1f} s), "
                  f"peak RSS {peak_rss_mb():.0f} MB (+{grown:.0f} MB)")  # fmt: skip
            print(f"expand / naive time: {expand_s / naive_s:.1f}x; "
                  f"validate / naive time: {validate_s / naive_s:.1f}x")  # fmt: skip
    finally:
        demo.close()


if __name__ == "__main__":
    main()
