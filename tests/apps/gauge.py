"""What a scheduler did to an app, seen from the server: /predict(x, delay) sleeps
`delay` seconds (default GAUGE_DELAY, else 0.1) and returns x, GAUGE_LIMIT (default 16)
at a time.

/stats (JSON text, answered at once, outside the queue) tells how many calls started
and finished, how many ran at the same time at most, and when each started
(`time.monotonic()` of this process, for spacing). /reset clears it all.
"""

from __future__ import annotations

import json
import os
import threading
import time

import _compat
import gradio as gr

DELAY = float(os.environ.get("GAUGE_DELAY", "0.1"))
LIMIT = int(os.environ.get("GAUGE_LIMIT", "16"))

_lock = threading.Lock()
_running = 0
_max_running = 0
_finished = 0
_starts: list[float] = []


def predict(x: str, delay: float) -> str:
    global _running, _max_running, _finished
    with _lock:
        _starts.append(time.monotonic())
        _running += 1
        _max_running = max(_max_running, _running)
    try:
        time.sleep(max(0.0, float(delay)))
    finally:
        with _lock:
            _running -= 1
            _finished += 1
    return x


def stats() -> str:
    with _lock:
        return json.dumps(
            {
                "started": len(_starts),
                "finished": _finished,
                "running": _running,
                "max_running": _max_running,
                "starts": list(_starts),
            }
        )


def reset() -> str:
    global _max_running, _finished
    with _lock:
        _starts.clear()
        _finished = 0
        _max_running = _running
    return stats()


with gr.Blocks(title="gauge") as demo:
    x = gr.Textbox(label="x")
    delay = gr.Number(value=DELAY, label="delay")
    y = gr.Textbox(label="y")
    gr.Button("Predict").click(
        predict, inputs=[x, delay], outputs=y, api_name="predict", concurrency_limit=LIMIT
    )
    # queue=False: answered at once via /run/stats, whatever the queue holds.
    out = gr.Textbox(label="stats")
    gr.Button("Stats").click(stats, inputs=None, outputs=out, api_name="stats", queue=False)
    gr.Button("Reset").click(reset, inputs=None, outputs=out, api_name="reset", queue=False)

if __name__ == "__main__":
    _compat.launch(demo, max_threads=max(40, LIMIT + 4))
