"""A crashing endpoint on an app launched with show_error=False.

/crash raises ValueError: the client gets no error text. /app_error raises a
gr.Error, whose text gradio always sends.
"""

from __future__ import annotations

import _compat
import gradio as gr


def crash() -> str:
    raise ValueError("this text must not reach the client")


def app_error() -> str:
    raise _compat.error("A gr.Error is always shown", title="Shown anyway")


with gr.Blocks(title="quiet_crash") as demo:
    out = gr.Textbox(label="Out")
    gr.Button("Crash").click(crash, inputs=None, outputs=out, api_name="crash")
    gr.Button("Error").click(app_error, inputs=None, outputs=out, api_name="app_error")

if __name__ == "__main__":
    _compat.launch(demo, show_error=False)
