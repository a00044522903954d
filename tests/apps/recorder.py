"""Records every input it receives, so tests can tell whether a row was sent again.

/predict(x, n=0) appends `x` as one line to the file $RECORDER_LOG when the call
starts (flushed at once), sleeps $RECORDER_DELAY seconds (default 0), and returns
`x` upper-cased. If `x` is a line of the file $RECORDER_FAILS (read on every call;
missing means none), it raises gr.Error("Refused: <x>") instead. If `x` is
$RECORDER_INTERRUPT_ON, the first time only, it sends SIGINT to the process
$RECORDER_INTERRUPT_PID first (a Ctrl-C at a known row, for tests of interruption).
With $RECORDER_HOLD_DIR set, a call for `x` = `<gate>-...` waits while the file
`$RECORDER_HOLD_DIR/<gate>` exists (a test holds rows in flight, then lets them go).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import _compat
import gradio as gr

LOG = Path(os.environ["RECORDER_LOG"])
FAILS = Path(os.environ.get("RECORDER_FAILS", LOG.with_suffix(".fails")))
DELAY = float(os.environ.get("RECORDER_DELAY", "0"))
INTERRUPT_ON = os.environ.get("RECORDER_INTERRUPT_ON")
HOLD_DIR = os.environ.get("RECORDER_HOLD_DIR")

_lock = threading.Lock()
_interrupted: list[bool] = []


def predict(x: str, n: float = 0) -> str:
    with _lock, open(LOG, "a", encoding="utf-8") as log:
        log.write(x + "\n")
    if INTERRUPT_ON is not None and x == INTERRUPT_ON and not _interrupted:
        _interrupted.append(True)
        os.kill(int(os.environ["RECORDER_INTERRUPT_PID"]), signal.SIGINT)
    if DELAY:
        time.sleep(DELAY)
    if HOLD_DIR is not None and "-" in x:
        gate = Path(HOLD_DIR) / x.split("-", 1)[0]
        while gate.exists():
            time.sleep(0.05)
    try:
        fails = set(FAILS.read_text(encoding="utf-8").splitlines())
    except FileNotFoundError:
        fails = set()
    if x in fails:
        raise _compat.error(f"Refused: {x}", title="Refused")
    return x.upper()


with gr.Blocks(title="recorder") as demo:
    x = gr.Textbox(label="x")
    n = gr.Number(label="n", value=0)
    y = gr.Textbox(label="y")
    gr.Button("Predict").click(
        predict, inputs=[x, n], outputs=y, api_name="predict", concurrency_limit=16
    )

if __name__ == "__main__":
    _compat.launch(demo, max_threads=40)
