"""A script as most on the web are written: it picks its own port, asks for a share link
and a browser tab, at module level. spacerun's launcher must put it on spacerun's port.

/predict(name) -> "Hello <name> from pid <pid>", so a test can tell the copies apart.
"""

import os

import gradio as gr


def greet(name: str) -> str:
    return f"Hello {name} from pid {os.getpid()}"


demo = gr.Interface(fn=greet, inputs="text", outputs="text")
demo.launch(server_name="0.0.0.0", server_port=7960, share=True, inbrowser=True)
