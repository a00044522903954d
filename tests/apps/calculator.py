"""Calculator: one endpoint, /predict(num1, operation, num2) -> number.

Dividing by zero raises gr.Error("Cannot divide by zero", title="Math error").
"""

from __future__ import annotations

import _compat
import gradio as gr


def calculate(num1: float, operation: str, num2: float) -> float:
    if operation == "add":
        return num1 + num2
    if operation == "subtract":
        return num1 - num2
    if operation == "multiply":
        return num1 * num2
    if num2 == 0:
        raise _compat.error("Cannot divide by zero", title="Math error")
    return num1 / num2


with gr.Blocks(title="calculator") as demo:
    num1 = gr.Number(label="First number")
    operation = gr.Radio(["add", "subtract", "multiply", "divide"], value="add", label="Operation")
    num2 = gr.Number(label="Second number")
    result = gr.Number(label="Result")
    button = gr.Button("Calculate")
    button.click(calculate, inputs=[num1, operation, num2], outputs=result, api_name="predict")

if __name__ == "__main__":
    _compat.launch(demo)
