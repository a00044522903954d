"""An app that takes an API key as an input and is careless with it, as real ones can be.

/predict(text, api_key) -> text. It prints the key to its console (its log), tells it
back in a gr.Info, and returns `text` with the key appended. If `text` contains "fail",
it raises gr.Error(f"bad key {api_key}") instead: the error echoes the secret.
With $KEYED_CRASH_WITH set, it fails at start instead, quoting that value.
"""

from __future__ import annotations

import os

import _compat
import gradio as gr

if "KEYED_CRASH_WITH" in os.environ:
    raise RuntimeError(f"keyed: cannot start with key {os.environ['KEYED_CRASH_WITH']}")


def predict(text: str, api_key: str) -> str:
    print(f"keyed: called with key {api_key}", flush=True)
    if "fail" in text:
        raise _compat.error(f"bad key {api_key}", title="Refused")
    gr.Info(f"using key {api_key}")
    return f"{text} (signed with {api_key})"


with gr.Blocks(title="keyed") as demo:
    text = gr.Textbox(label="Text")
    api_key = gr.Textbox(label="API key")
    result = gr.Textbox(label="Result")
    gr.Button("Send").click(predict, inputs=[text, api_key], outputs=result, api_name="predict")

if __name__ == "__main__":
    _compat.launch(demo)
