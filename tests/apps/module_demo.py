"""A script that builds `demo` and never launches it (as `gradio app.py` expects).

/predict(name) -> "<name>: CUDA_VISIBLE_DEVICES=<what this process sees>", so a test can
check which GPU each copy was given without any GPU.
"""

import os

import gradio as gr


def report(name: str) -> str:
    return f"{name}: CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>')}"


demo = gr.Interface(fn=report, inputs="text", outputs="text")
