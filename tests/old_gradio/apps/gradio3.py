"""An app written for gradio 3.x (run under gradio 3.50.2 by the tests): the shapes of
gradio's own 3.50.2 demos (`calculator`, `count_generator`, `zip_files`, a State
counter) in one Blocks, with the queue on as 3.x Spaces had it, plus one `queue=False`
listener and one without an api_name.

/predict(num1=3, operation, num2) -> number (divide by zero: gr.Error)
/count(n=5) -> text, a generator yielding "0", "1", ... every 0.2 s
/file(f) -> file (the same content, renamed)
/store(x) -> the words stored so far in this session (State)
/upper(x) -> x.upper(), queue=False: a direct POST /api/predict
fn_index 5 (no api_name): x reversed
/big(size) -> "x" * size
/mirror(image) -> the image flipped left to right (3.x sends images as base64)

GRADIO3_TIGHT_QUEUE=1 runs one job at a time and queues at most one more;
GRADIO3_AUTH=user:password asks for a login.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import gradio as gr


def calculator(num1, operation, num2):
    if operation == "add":
        return num1 + num2
    if operation == "subtract":
        return num1 - num2
    if operation == "multiply":
        return num1 * num2
    if num2 == 0:
        raise gr.Error("Cannot divide by zero!")
    return num1 / num2


def count(n):
    for i in range(int(n)):
        time.sleep(0.2)
        yield str(i)


def copy_file(f):
    target = Path(tempfile.mkdtemp()) / ("copy_" + Path(f.name).name)
    shutil.copy(f.name, target)
    return str(target)


def store(x, words):
    words = (words or []) + [x]
    return " ".join(words), words


with gr.Blocks() as demo:
    num1 = gr.Number(value=3, label="num1")
    operation = gr.Radio(["add", "subtract", "multiply", "divide"], label="operation")
    num2 = gr.Number(label="num2")
    result = gr.Number(label="result")
    gr.Button().click(calculator, [num1, operation, num2], result, api_name="predict")
    n = gr.Number(value=5, label="n")
    counted = gr.Textbox(label="counted")
    gr.Button().click(count, n, counted, api_name="count")
    file_in = gr.File(label="f")
    file_out = gr.File(label="copy")
    gr.Button().click(copy_file, file_in, file_out, api_name="file")
    x = gr.Textbox(label="x")
    words = gr.State()
    stored = gr.Textbox(label="stored")
    gr.Button().click(store, [x, words], [stored, words], api_name="store")
    gr.Button().click(lambda s: s.upper(), x, stored, api_name="upper", queue=False)
    gr.Button().click(lambda s: s[::-1], x, stored)
    image_in = gr.Image(label="image", type="pil")
    image_out = gr.Image(label="mirrored")
    gr.Button().click(lambda im: im.transpose(0), image_in, image_out, api_name="mirror")
    size = gr.Number(label="size", precision=0)
    gr.Button().click(lambda k: "x" * int(k), size, stored, api_name="big")

if __name__ == "__main__":
    auth = os.environ.get("GRADIO3_AUTH")
    login = tuple(auth.split(":", 1)) if auth else None
    if os.environ.get("GRADIO3_TIGHT_QUEUE"):
        demo.queue(concurrency_count=1, max_size=1).launch(auth=login)
    else:
        demo.queue(concurrency_count=4).launch()
