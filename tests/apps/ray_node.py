"""Where a `ray:` replica runs: /where(x) returns x with this process's node and GPUs.

The node id is the one spacerun's actor passes down (SPACERUN_RAY_NODE_ID, from Ray's
runtime context); CUDA_VISIBLE_DEVICES is what Ray set for the actor's GPUs. RAY_DELAY
(seconds, default 0) is how long each call takes.
"""

from __future__ import annotations

import json
import os
import time

import _compat
import gradio as gr

DELAY = float(os.environ.get("RAY_DELAY", "0"))


def where(x: str) -> str:
    time.sleep(DELAY)
    return json.dumps(
        {
            "x": x,
            "node": os.environ.get("SPACERUN_RAY_NODE_ID"),
            "replica": os.environ.get("SPACERUN_REPLICA"),
            "gpus": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "pid": os.getpid(),
        }
    )


with gr.Blocks(title="ray node") as demo:
    x = gr.Textbox(label="x")
    y = gr.Textbox(label="where")
    gr.Button("Where").click(where, inputs=x, outputs=y, api_name="where", concurrency_limit=8)

if __name__ == "__main__":
    _compat.launch(demo)
