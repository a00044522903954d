"""An echo app behind gradio's password login: alice / wonderland."""

from __future__ import annotations

import _compat
import gradio as gr

USERNAME = "alice"
PASSWORD = "wonderland"


def echo(text: str) -> str:
    return text


with gr.Blocks(title="auth") as demo:
    text = gr.Textbox(label="Text")
    out = gr.Textbox(label="Echo")
    gr.Button("Echo").click(echo, inputs=text, outputs=out, api_name="echo")

if __name__ == "__main__":
    _compat.launch(demo, auth=(USERNAME, PASSWORD))
