"""The seed guide's kinds of endpoint, written with what gradio 4.0 already had, so the
same app runs on every release the tests start (3.50 to 5.50; where 3.x differs, as a
3.x Space would have it: `GRADIO3`).

    /predict(num1, operation, num2)     the calculator; divide by zero -> gr.Error
    /translate(text)                    a one-string function, like abidlabs/en2fr
    /describe(name, greeting, times)    defaults: greeting "Hello", times 2
    /echo_file(path) -> file            a file in, the same bytes out
    /count(n)                           a generator: "0", "0 1", ... one step per 0.3 s
    /count_word(word) -> count          session state: how often this session sent it
    /sleep(seconds)                     holds the app's one worker (for cancel)
"""

import os
import time
from typing import Any

import gradio as gr

GRADIO3 = gr.__version__.startswith("3.")


def calculate(num1: float, operation: str, num2: float) -> float:
    if operation == "add":
        return num1 + num2
    if operation == "subtract":
        return num1 - num2
    if operation == "multiply":
        return num1 * num2
    if num2 == 0:
        raise gr.Error("Cannot divide by zero!")
    return num1 / num2


def translate(text: str) -> str:
    return {"Hello": "Bonjour", "Goodbye": "Au revoir"}.get(text, f"[fr] {text}")


def describe(name: str, greeting: str, times: float) -> str:
    return " ".join([f"{greeting}, {name}!"] * int(times))


def echo_file(path: Any) -> str:
    # 3.x hands a File input over as a temporary file; 4.0 on, as its path.
    return path.name if GRADIO3 else path


def count(n: float):
    shown = []
    for i in range(int(n)):
        shown.append(str(i))
        yield " ".join(shown)
        time.sleep(0.3)


def count_word(word: str, words: list):
    words = [*words, word]
    return words.count(word), words


def sleep(seconds: float) -> str:
    time.sleep(seconds)
    return f"slept {seconds:g} s"


with gr.Blocks() as demo:
    num1, num2 = gr.Number(label="num1"), gr.Number(label="num2")
    operation = gr.Radio(["add", "subtract", "multiply", "divide"], label="operation")
    result = gr.Number(label="result")
    gr.Button("=").click(calculate, [num1, operation, num2], result, api_name="predict")

    text, french = gr.Textbox(label="text"), gr.Textbox(label="french")
    gr.Button("translate").click(translate, text, french, api_name="translate")

    name = gr.Textbox(label="name")
    greeting = gr.Textbox(value="Hello", label="greeting")
    times = gr.Slider(1, 5, value=2, step=1, label="times")
    description = gr.Textbox(label="description")
    gr.Button("describe").click(describe, [name, greeting, times], description, api_name="describe")

    file_kind = {} if GRADIO3 else {"type": "filepath"}
    file_in, file_out = gr.File(label="path", **file_kind), gr.File(label="copy")
    gr.Button("echo").click(echo_file, file_in, file_out, api_name="echo_file")

    n, counted = gr.Number(value=3, label="n"), gr.Textbox(label="counted")
    gr.Button("count").click(count, n, counted, api_name="count")

    word, seen, words = gr.Textbox(label="word"), gr.Number(label="seen"), gr.State([])
    word.submit(count_word, [word, words], [seen, words], api_name="count_word")

    seconds, slept = gr.Number(value=1, label="seconds"), gr.Textbox(label="slept")
    gr.Button("sleep").click(sleep, seconds, slept, api_name="sleep")

# One worker, as a 3.x Space had it, and one at a time on 4.x+.
queued = demo.queue(concurrency_count=1) if GRADIO3 else demo.queue(default_concurrency_limit=1)
queued.launch(
    server_name="127.0.0.1",
    server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    show_error=True,
)
