"""/names(first, last) -> "<first> <last>", in the variant that NAMES_VARIANT names: the
same app redeployed with a change, as a Space rebuilt from a new commit looks.

- `v1` (default): /names(first, last) -> full
- `swapped`: /names(last, first) -> full: the same inputs in the other order
- `extra`: /names(first, last, title="") -> full: a new optional parameter
- `dropped`: /names(first) -> full: `last` is gone
- `relabelled`: /names(first, last) -> name: the output's label changed

Each call sleeps NAMES_DELAY seconds (default 0.02), so a batch spans a restart.
"""

from __future__ import annotations

import os
import time

import _compat
import gradio as gr

VARIANT = os.environ.get("NAMES_VARIANT", "v1")
DELAY = float(os.environ.get("NAMES_DELAY", "0.02"))


def names(first: str, last: str) -> str:
    time.sleep(DELAY)
    return f"{first} {last}"


def names_swapped(last: str, first: str) -> str:
    time.sleep(DELAY)
    return f"{first} {last}"


def names_extra(first: str, last: str, title: str) -> str:
    time.sleep(DELAY)
    return f"{title}{first} {last}"


def names_dropped(first: str) -> str:
    time.sleep(DELAY)
    return f"{first} ?"


with gr.Blocks(title="names") as demo:
    first = gr.Textbox(label="first")
    last = gr.Textbox(label="last")
    title = gr.Textbox(label="title", value="")
    full = gr.Textbox(label="name" if VARIANT == "relabelled" else "full")
    button = gr.Button("Go")
    if VARIANT == "swapped":
        button.click(names_swapped, inputs=[last, first], outputs=full, api_name="names")
    elif VARIANT == "extra":
        button.click(names_extra, inputs=[first, last, title], outputs=full, api_name="names")
    elif VARIANT == "dropped":
        button.click(names_dropped, inputs=[first], outputs=full, api_name="names")
    else:
        button.click(names, inputs=[first, last], outputs=full, api_name="names")

if __name__ == "__main__":
    _compat.launch(demo)
