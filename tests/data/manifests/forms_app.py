"""A Gradio app whose one endpoint, /form, has a parameter of every kind validation checks.

form(text, count, scale=1, flag=False, mode="fast", tags=[], audio=None, extra=None)
echoes what it received. Uploads are limited to 1 kB so the size check can be tested.
`serve()` launches it in this process on a free loopback port and yields its AppSchema,
read over HTTP like the client does.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# No network here: skip gradio's analytics call (and its wait) before importing it.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr
import httpx

from jobs import AppSchema

MAX_FILE_SIZE = 1000


def form(
    text: str,
    count: int,
    scale: float,
    flag: bool,
    mode: str,
    tags: list[str],
    audio: str | None = None,
    extra: Any = None,
) -> dict[str, Any]:
    return {"text": text, "count": count, "scale": scale, "flag": flag, "mode": mode,
            "tags": tags, "audio": audio, "extra": extra}  # fmt: skip


def build() -> gr.Blocks:
    with gr.Blocks(title="forms") as demo:
        inputs = [
            gr.Textbox(label="Text", value=None),
            gr.Number(label="Count", precision=0, value=None),
            gr.Slider(0, 10, value=1, label="Scale"),
            gr.Checkbox(label="Flag", value=False),
            gr.Radio(["fast", "slow"], value="fast", label="Mode"),
            gr.CheckboxGroup(["a", "b", "c"], value=[], label="Tags"),
            gr.Audio(type="filepath", label="Audio"),
            gr.JSON(label="Extra"),
        ]
        received = gr.JSON(label="Received")
        gr.Button("Go").click(form, inputs=inputs, outputs=received, api_name="form")
        gr.Button("Echo").click(lambda t: t, inputs=inputs[0], outputs=received, api_name="echo")
    return demo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def read_schema(url: str) -> AppSchema:
    with httpx.Client(timeout=10, trust_env=False) as http:
        config = http.get(f"{url}/config").json()
        prefix = config.get("api_prefix", "")
        info = http.get(f"{url}{prefix}/info", params={"all_endpoints": "True"}).json()
    return AppSchema.parse(config, info, url=url)


@contextmanager
def serve() -> Iterator[AppSchema]:
    demo = build()
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True,
                max_file_size=MAX_FILE_SIZE, quiet=True)  # fmt: skip
    try:
        yield read_schema(f"http://127.0.0.1:{port}")
    finally:
        demo.close()
