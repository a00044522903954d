"""Throughput target: /predict(x) sleeps BENCH_DELAY seconds (default 0.05) and
returns x, BENCH_CONCURRENCY (default 16) at a time; /calls counts finished calls.

/spans (JSON text, outside the queue) tells how many calls run now and lists each
finished call's start and end (`time.monotonic()`, one clock for every process of the
machine), for measuring on the servers' clock; /reset clears the list.
"""

from __future__ import annotations

import json
import os
import threading
import time

import _compat
import gradio as gr

DELAY = float(os.environ.get("BENCH_DELAY", "0.05"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))

_lock = threading.Lock()
_calls = 0
_spans: list[tuple[float, float]] = []
_running = 0


def predict(x: str) -> str:
    global _calls, _running
    start = time.monotonic()
    with _lock:
        _running += 1
    time.sleep(DELAY)
    with _lock:
        _calls += 1
        _running -= 1
        _spans.append((start, time.monotonic()))
    return x


def spans() -> str:
    with _lock:
        return json.dumps({"running": _running, "spans": _spans})


def reset() -> str:
    with _lock:
        _spans.clear()
    return spans()


def calls() -> int:
    with _lock:
        return _calls


with gr.Blocks(title="bench") as demo:
    x = gr.Textbox(label="x")
    y = gr.Textbox(label="y")
    gr.Button("Predict").click(
        predict, inputs=x, outputs=y, api_name="predict", concurrency_limit=CONCURRENCY
    )
    n = gr.Number(label="calls", precision=0)
    gr.Button("Calls").click(calls, inputs=None, outputs=n, api_name="calls", queue=False)
    out = gr.Textbox(label="spans")
    gr.Button("Spans").click(spans, inputs=None, outputs=out, api_name="spans", queue=False)
    gr.Button("Reset").click(reset, inputs=None, outputs=out, api_name="reset", queue=False)

if __name__ == "__main__":
    # max_threads caps running events over all listeners; keep it above the limit.
    _compat.launch(demo, max_threads=max(40, CONCURRENCY + 4))
