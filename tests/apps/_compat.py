"""Shared helpers for the test apps, so each app runs on gradio 4.44, 5.50 and 6.x.

The apps are started as scripts (`python tests/apps/<name>.py`), so this module is
imported as a top-level module from the apps' own folder, not as a package.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

import gradio as gr

GRADIO_MAJOR = int(gr.__version__.split(".")[0])


def _accepts(func: Any, name: str) -> bool:
    try:
        return name in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def error(message: str, *, title: str) -> gr.Error:
    """A gr.Error with a title where the installed gradio supports one (5.x+)."""
    if _accepts(gr.Error.__init__, "title"):
        return gr.Error(message, title=title)
    return gr.Error(message)


def visibility(level: str) -> dict[str, Any]:
    """Listener kwargs for "public" / "undocumented" / "private" across versions.

    6.x has `api_visibility`; 4.x/5.x spell undocumented as `show_api=False` and
    private as `api_name=False`.
    """
    if GRADIO_MAJOR >= 6:
        return {"api_visibility": level}
    if level == "undocumented":
        return {"show_api": False}
    if level == "private":
        return {"api_name": False}
    return {}


def chatbot(**kwargs: Any) -> gr.Chatbot:
    """A Chatbot in the messages format (the only format in 6.x, opt-in before)."""
    if _accepts(gr.Chatbot.__init__, "type"):
        kwargs.setdefault("type", "messages")
    return gr.Chatbot(**kwargs)


def port() -> int:
    return int(os.environ.get("GRADIO_SERVER_PORT", "7860"))


def launch(demo: gr.Blocks, *, queue: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Queue and launch blocking on 127.0.0.1 at $GRADIO_SERVER_PORT (over HTTPS when
    $SPACERUN_TEST_SSL_CERTFILE and $SPACERUN_TEST_SSL_KEYFILE name a certificate)."""
    certfile = os.environ.get("SPACERUN_TEST_SSL_CERTFILE")
    keyfile = os.environ.get("SPACERUN_TEST_SSL_KEYFILE")
    if certfile and keyfile:
        # Self-signed: gradio's own start-up check must not verify it.
        kwargs.update(ssl_certfile=certfile, ssl_keyfile=keyfile, ssl_verify=False)
    demo.queue(**(queue or {})).launch(
        server_name="127.0.0.1",
        server_port=port(),
        prevent_thread_lock=False,
        **kwargs,
    )
