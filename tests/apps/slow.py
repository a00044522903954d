"""Slow jobs, a small queue and a crash, for queueing, cancel and error tests.

* /sleep(seconds, tag): concurrency_limit=1; the queue holds at most 2 waiting
  events, so with one running a 4th concurrent join gets 503 "Queue is full".
* /slow_gen(n, tag): generator, concurrency_limit=1, one yield every SLOW_GEN_DELAY
  seconds (default 0.3).
* /crash: raises ValueError (launched with show_error=True, so the text is sent).
* /calls: JSON text of what actually ran, per tag, so a test can see on the server
  that a cancelled job never started or stopped early. /reset_calls clears it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import _compat
import gradio as gr

GEN_DELAY = float(os.environ.get("SLOW_GEN_DELAY", "0.3"))

_lock = threading.Lock()
_sleep_started: Counter[str] = Counter()
_sleep_completed: Counter[str] = Counter()
_gen_steps: Counter[str] = Counter()
_gen_completed: Counter[str] = Counter()
_gen_running = 0


def sleep(seconds: float, tag: str) -> str:
    with _lock:
        _sleep_started[tag] += 1
    time.sleep(seconds)
    with _lock:
        _sleep_completed[tag] += 1
    return f"slept {seconds}"


def slow_gen(n: float, tag: str) -> Iterator[str]:
    global _gen_running
    with _lock:
        _gen_running += 1
    try:
        for i in range(int(n)):
            if i:
                time.sleep(GEN_DELAY)
            with _lock:
                _gen_steps[tag] += 1
            yield str(i)
        with _lock:
            _gen_completed[tag] += 1
    finally:  # also on cancel: gradio closes the generator
        with _lock:
            _gen_running -= 1


def crash() -> str:
    raise ValueError("the app crashed on purpose")


def _calls() -> dict[str, Any]:
    with _lock:
        return {
            "sleep_started": dict(_sleep_started),
            "sleep_completed": dict(_sleep_completed),
            "slow_gen_steps": dict(_gen_steps),
            "slow_gen_completed": dict(_gen_completed),
            # Sleeps still running in a worker thread (a cancelled sync function
            # keeps running; only its queue slot is released).
            "sleep_running": sum(_sleep_started.values()) - sum(_sleep_completed.values()),
            "slow_gen_running": _gen_running,
        }


def calls() -> str:
    return json.dumps(_calls())


def reset_calls() -> str:
    with _lock:
        for counter in (_sleep_started, _sleep_completed, _gen_steps, _gen_completed):
            counter.clear()
    return calls()


with gr.Blocks(title="slow") as demo:
    seconds = gr.Number(value=1, label="Seconds")
    tag = gr.Textbox(value="", label="Tag")
    slept = gr.Textbox(label="Slept")
    gr.Button("Sleep").click(
        sleep, inputs=[seconds, tag], outputs=slept, api_name="sleep", concurrency_limit=1
    )

    n = gr.Number(value=3, precision=0, label="Steps")
    gen_tag = gr.Textbox(value="", label="Generator tag")
    step = gr.Textbox(label="Step")
    gr.Button("Generate").click(
        slow_gen, inputs=[n, gen_tag], outputs=step, api_name="slow_gen", concurrency_limit=1
    )

    crashed = gr.Textbox(label="Crash")
    gr.Button("Crash").click(crash, inputs=None, outputs=crashed, api_name="crash")

    # queue=False: answered at once via /run/calls even while the queue is full.
    # JSON as text: gradio 5.50's /run sends a gr.JSON output as "root={...}" (a repr).
    counts = gr.Textbox(label="Calls")
    gr.Button("Calls").click(calls, inputs=None, outputs=counts, api_name="calls", queue=False)
    gr.Button("Reset").click(
        reset_calls, inputs=None, outputs=counts, api_name="reset_calls", queue=False
    )

if __name__ == "__main__":
    _compat.launch(demo, queue={"max_size": 2}, show_error=True)
