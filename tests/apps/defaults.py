"""Defaults: /describe(name, greeting, times, suffix) returns what it received as JSON.

/info on 6.31 reports: name required (Textbox without initial value); greeting
default "Hello" (Textbox initial value); times default 2 (Slider); suffix default
None (Python default None, Textbox without initial value).
"""

from __future__ import annotations

from typing import Any

import _compat
import gradio as gr


def describe(name: str, greeting: str, times: float, suffix: str | None = None) -> dict[str, Any]:
    return {"name": name, "greeting": greeting, "times": times, "suffix": suffix}


with gr.Blocks(title="defaults") as demo:
    name = gr.Textbox(label="Name", value=None)
    greeting = gr.Textbox(label="Greeting", value="Hello")
    times = gr.Slider(minimum=0, maximum=10, step=1, value=2, label="Times")
    suffix = gr.Textbox(label="Suffix", value=None)
    received = gr.JSON(label="Received")
    gr.Button("Describe").click(
        describe, inputs=[name, greeting, times, suffix], outputs=received, api_name="describe"
    )

if __name__ == "__main__":
    _compat.launch(demo)
