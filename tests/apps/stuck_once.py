"""An app whose first process wedges: /generate(prompt) answers `done: <prompt>` after
`STUCK_TASK_SECONDS` (default 0.1), except in the first process started with the marker
file `$STUCK_MARKER`, where every job hangs while `/config` still answers (a hung GPU, a
deadlocked worker). The marker is claimed atomically, so of copies started together
exactly one wedges; any process started later (a restart) works.
"""

from __future__ import annotations

import os
import threading
import time

import _compat
import gradio as gr

TASK_SECONDS = float(os.environ.get("STUCK_TASK_SECONDS", "0.1"))


def _claim(marker: str | None) -> bool:
    if not marker:
        return False
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


WEDGED = _claim(os.environ.get("STUCK_MARKER"))
_never = threading.Event()


def generate(prompt: str) -> str:
    if WEDGED:
        _never.wait()  # holds the job (and the app's one worker) for good
    time.sleep(TASK_SECONDS)
    return f"done: {prompt}"


with gr.Blocks(title="stuck_once") as demo:
    prompt = gr.Textbox(label="Prompt")
    out = gr.Textbox(label="Output")
    gr.Button("Generate").click(generate, inputs=prompt, outputs=out, api_name="generate")

if __name__ == "__main__":
    _compat.launch(demo, show_error=True)
