"""Generators: /count, /stream_text (append diffs), /chat (nested diffs), /fail_after,
/progress (progress and log messages).

GENERATOR_DELAY (seconds, default 0.1) is the pause between yields.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import _compat
import gradio as gr

DELAY = float(os.environ.get("GENERATOR_DELAY", "0.1"))


def count(n: float, delay: float | None) -> Iterator[str]:
    pause = DELAY if delay is None else delay
    for i in range(int(n)):
        if i:
            time.sleep(pause)
        yield str(i)


def stream_text(text: str) -> Iterator[str]:
    # Yields a growing prefix, so from the second yield on the server sends
    # ["append", [], "<token> "] diffs instead of full values.
    shown = ""
    for token in text.split():
        shown += token + " "
        yield shown
        time.sleep(DELAY / 2)


def chat(message: str) -> Iterator[list[dict[str, Any]]]:
    # The assistant's message grows word by word: nested append diffs.
    history: list[dict[str, Any]] = [
        {"role": "user", "content": message},
        {"role": "assistant", "content": ""},
    ]
    for word in f"You said: {message}".split():
        history[-1]["content"] += ("" if not history[-1]["content"] else " ") + word
        yield history
        time.sleep(DELAY / 2)


def fail_after(text: str) -> Iterator[str]:
    yield f"{text} 1"
    time.sleep(DELAY / 2)
    yield f"{text} 2"
    raise _compat.error("Generator failed after two steps", title="Generator error")


def progress(steps: float, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
    gr.Info("Starting the steps")
    for _ in progress.tqdm(range(int(steps)), desc="looping"):
        time.sleep(DELAY)
    gr.Warning("Almost done")
    return f"did {int(steps)} steps"


with gr.Blocks(title="generator") as demo:
    n = gr.Number(value=3, precision=0, label="How many")
    delay = gr.Number(value=None, label="Delay")
    counted = gr.Textbox(label="Count")
    gr.Button("Count").click(count, inputs=[n, delay], outputs=counted, api_name="count")

    text = gr.Textbox(value="the quick brown fox jumps", label="Text")
    streamed = gr.Textbox(label="Streamed")
    gr.Button("Stream").click(stream_text, inputs=text, outputs=streamed, api_name="stream_text")

    message = gr.Textbox(label="Message")
    bot = _compat.chatbot(label="Chat")
    message.submit(chat, inputs=message, outputs=bot, api_name="chat")

    failing_text = gr.Textbox(value="step", label="Prefix")
    failing = gr.Textbox(label="Steps")
    gr.Button("Fail").click(fail_after, inputs=failing_text, outputs=failing, api_name="fail_after")

    steps = gr.Number(value=3, precision=0, label="Steps")
    progressed = gr.Textbox(label="Progress result")
    gr.Button("Progress").click(progress, inputs=steps, outputs=progressed, api_name="progress")

if __name__ == "__main__":
    _compat.launch(demo, queue={"default_concurrency_limit": 8})
