"""Throughput target: /predict(x) sleeps BENCH_DELAY seconds (default 0.05) and
returns x, BENCH_CONCURRENCY (default 16) at a time; /calls counts finished calls.
"""

from __future__ import annotations

import os
import threading
import time

import _compat
import gradio as gr

DELAY = float(os.environ.get("BENCH_DELAY", "0.05"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "16"))

_lock = threading.Lock()
_calls = 0


def predict(x: str) -> str:
    global _calls
    time.sleep(DELAY)
    with _lock:
        _calls += 1
    return x


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

if __name__ == "__main__":
    # max_threads caps running events over all listeners; keep it above the limit.
    _compat.launch(demo, max_threads=max(40, CONCURRENCY + 4))
