"""A gradio app served by uvicorn.run on a port of its own ($WRONG_PORT_APP_PORT), as
FastAPI apps do: nothing spacerun's launcher redirects, so the app listens elsewhere."""

import os

import gradio as gr
import uvicorn
from fastapi import FastAPI

demo = gr.Interface(fn=lambda text: text, inputs="text", outputs="text")
app = gr.mount_gradio_app(FastAPI(), demo, path="/")
uvicorn.run(app, host="127.0.0.1", port=int(os.environ["WRONG_PORT_APP_PORT"]))
