"""Small apps in the style of gradio's own demos, in one Blocks, for the gradio_client
differential test (`tests/jobs/test_compat_gradio_client.py`).

* /update_choices(kind) -> `gr.update(choices=..., value=...)` for a Dropdown (as in
  gradio's `blocks_update` demos), /hide() -> `gr.update(visible=False)` (no value).
* /lambda and /lambda_1 twice: an inner Blocks rendered into this one gets a name that
  the outer one already uses (gradio 6's renaming does not see its own new names), so
  the config lists two listeners named `lambda_1`; /info describes only the last one.
* /chat(message, history) -> a Chatbot in the messages format.
* /gallery(n) -> a Gallery of n generated images with captions.
* /count_state(step) -> a running total kept in gr.State (the session's).
* /count(n) -> a generator yielding "0", "1", ... "n-1".
* /selected(text) -> an event-data listener (gr.EventData), called without an event.
* /fail(text) -> raises gr.Error("no good: <text>").
* /forbidden() -> a JSON holding FileData for this script, which the app will not serve
  (403 "File not allowed" on download).
* /validator_crash(text) (gradio 6) -> its validator raises, so queue/join answers 400.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _compat
import gradio as gr
from PIL import Image

CHOICES = {"animals": ["Giraffe", "Zebra"], "colors": ["Red", "Blue"]}


def update_choices(kind: str) -> Any:
    options = CHOICES.get(kind, [])
    return gr.update(choices=options, value=options[0] if options else None)


def hide() -> Any:
    return gr.update(visible=False)


def chat(message: str, history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        *history,
        {"role": "user", "content": message},
        {"role": "assistant", "content": f"You said: {message}"},
    ]


def gallery(n: float) -> list[tuple[str, str]]:
    folder = Path(tempfile.mkdtemp(prefix="demos-gallery-"))
    items = []
    for i in range(int(n)):
        path = folder / f"image_{i}.png"
        Image.new("RGB", (4, 4), (40 * i % 256, 0, 0)).save(path)
        items.append((str(path), f"image {i}"))
    return items


def count_state(step: float, total: float) -> tuple[float, float]:
    total = total + step
    return total, total


def count(n: float) -> Iterator[str]:
    for i in range(int(n)):
        yield str(i)


def selected(text: str, evt: gr.EventData) -> str:
    # An API call carries no event data: gradio passes an EventData holding None.
    return f"{text}: {type(evt).__name__}"


def fail(text: str) -> str:
    raise gr.Error(f"no good: {text}")


def forbidden() -> dict[str, Any]:
    return {"path": __file__, "orig_name": "demos.py", "meta": {"_type": "gradio.FileData"}}


def broken_validator(text: str) -> dict[str, Any]:
    raise ValueError("the validator itself is broken")


with gr.Blocks() as inner:
    # Two lambdas: "lambda" and "lambda_1" inside this Blocks, renamed on render.
    inner_in = gr.Textbox(label="Inner in")
    inner_out = gr.Textbox(label="Inner out")
    inner_in.submit(lambda x: f"inner: {x}", inner_in, inner_out)
    gr.Button("Inner").click(lambda: "constant", None, inner_out)

with gr.Blocks(title="demos") as demo:
    kind = gr.Radio(list(CHOICES), label="Kind", value="animals")
    dropdown = gr.Dropdown(label="Choice", choices=CHOICES["animals"], interactive=True)
    gr.Button("Update").click(update_choices, kind, dropdown, api_name="update_choices")
    gr.Button("Hide").click(hide, None, dropdown, api_name="hide")

    outer_in = gr.Textbox(label="Outer in")
    outer_out = gr.Textbox(label="Outer out")
    outer_in.submit(lambda x: f"outer: {x}", outer_in, outer_out)
    inner.render()

    message = gr.Textbox(label="Message")
    chatbot = _compat.chatbot(label="Chat")
    message.submit(chat, [message, chatbot], chatbot, api_name="chat")

    n = gr.Number(label="How many", value=2)
    images = gr.Gallery(label="Images")
    gr.Button("Gallery").click(gallery, n, images, api_name="gallery")

    step = gr.Number(label="Step", value=1)
    total_state = gr.State(0)
    total = gr.Number(label="Total")
    gr.Button("Add").click(
        count_state, [step, total_state], [total, total_state], api_name="count_state"
    )

    steps = gr.Number(label="Steps", value=3)
    counted = gr.Textbox(label="Counted")
    gr.Button("Count").click(count, steps, counted, api_name="count")

    choice = gr.Textbox(label="Select in me")
    picked = gr.Textbox(label="Picked")
    choice.select(selected, choice, picked, api_name="selected")

    gr.Button("Fail").click(fail, outer_in, outer_out, api_name="fail")

    forged = gr.JSON(label="Forged file")
    gr.Button("Forbidden").click(forbidden, None, forged, api_name="forbidden")

    if _compat.GRADIO_MAJOR >= 6:
        gr.Button("Validator crash").click(
            lambda text: text,
            outer_in,
            outer_out,
            api_name="validator_crash",
            validator=broken_validator,
        )

if __name__ == "__main__":
    _compat.launch(demo)
