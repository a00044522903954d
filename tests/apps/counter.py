"""Session state: /count (the word counter of the gradio_client docs) and /add.

* /count(word) -> how many times this session sent that word before;
  `words = gr.State([])` is an input and an output, so /info lists only `word`.
* /add(step) -> running total of this session (State(0) + step).
"""

from __future__ import annotations

import _compat
import gradio as gr


def count(word: str, list_of_words: list[str]) -> tuple[int, list[str]]:
    return list_of_words.count(word), [*list_of_words, word]


def add(total: float, step: float) -> tuple[float, float]:
    new_total = total + step
    return new_total, new_total


with gr.Blocks(title="counter") as demo:
    words = gr.State([])
    textbox = gr.Textbox(label="word")
    number = gr.Number(label="count")
    textbox.submit(count, inputs=[textbox, words], outputs=[number, words], api_name="count")

    running = gr.State(0)
    step = gr.Number(value=1, label="step")
    total = gr.Number(label="total")
    gr.Button("Add").click(add, inputs=[running, step], outputs=[total, running], api_name="add")

if __name__ == "__main__":
    _compat.launch(demo)
