"""A chat app launched under a `__main__` guard, with a hardcoded port and share=True."""

import gradio as gr


def echo(message: str, history: list[object]) -> str:
    return f"echo: {message}"


demo = gr.ChatInterface(fn=echo)

if __name__ == "__main__":
    demo.queue().launch(server_port=7961, share=True)
