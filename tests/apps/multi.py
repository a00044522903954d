"""Several endpoints: /greet, /add, /upper (on two listeners: /upper and /upper_1),
/stats (two outputs), /hidden (undocumented: callable, not listed by /info), and
/private (never listed; api_name=False before 6.x).
"""

from __future__ import annotations

import _compat
import gradio as gr


def greet(name: str) -> str:
    """Say hello."""
    return f"Hello, {name}!"


def add(a: float, b: float) -> float:
    """Add two numbers."""
    return a + b


def upper(text: str) -> str:
    return text.upper()


def stats(text: str) -> tuple[float, float]:
    """Count the words and the characters of a text."""
    return len(text.split()), len(text)


def hidden(text: str) -> str:
    return f"hidden: {text}"


def private(text: str) -> str:
    return f"private: {text}"


with gr.Blocks(title="multi") as demo:
    name = gr.Textbox(label="Name")
    greeting = gr.Textbox(label="Greeting")
    gr.Button("Greet").click(greet, inputs=name, outputs=greeting, api_name="greet")

    a = gr.Number(label="a")
    b = gr.Number(label="b", value=1)
    total = gr.Number(label="Sum")
    gr.Button("Add").click(add, inputs=[a, b], outputs=total, api_name="add")

    # Two listeners on one function: the second gets the suffixed name "upper_1".
    text = gr.Textbox(label="Text")
    shout = gr.Textbox(label="Upper")
    text.submit(upper, inputs=text, outputs=shout, api_name="upper")
    gr.Button("Upper").click(upper, inputs=text, outputs=shout, api_name="upper")

    words = gr.Number(label="Words")
    chars = gr.Number(label="Characters")
    gr.Button("Stats").click(stats, inputs=text, outputs=[words, chars], api_name="stats")

    secret = gr.Textbox(label="Hidden")
    gr.Button("Hidden").click(
        hidden, inputs=text, outputs=secret, api_name="hidden", **_compat.visibility("undocumented")
    )
    private_kwargs = _compat.visibility("private")
    private_kwargs.setdefault("api_name", "private")
    gr.Button("Private").click(private, inputs=text, outputs=secret, **private_kwargs)

    if _compat.GRADIO_MAJOR >= 6:
        # /validated: a validator (gradio 6) refuses short names with HTTP 422.
        def check_name(name: str) -> dict[str, object]:
            return gr.validate(len(name) >= 3, "too short: at least 3 characters")

        named = gr.Textbox(label="Validated name")
        gr.Button("Validated").click(
            greet, inputs=named, outputs=greeting, api_name="validated", validator=check_name
        )

if __name__ == "__main__":
    _compat.launch(demo)
