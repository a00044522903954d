"""gradio 3.x's `ws` protocol, decoded (sans-IO): queue messages, direct-call answers and
the 3.x shape of files, turned into the `Message`s and values the rest of `jobs` uses.

A 3.x job has one websocket of its own at `/queue/join`. The server asks for the job's
ids (`send_hash`, answered with `hash_body`), reports its place (`estimation`), asks for
its inputs (`send_data`, answered with `data_body`) and then sends `process_starts`,
`process_generating` (the *whole* output each time) and `process_completed`; or
`queue_full` at once. There is no event id: the socket is the job. Unqueued endpoints
answer a `POST /api/predict` with the output object (`predict_answer`).

Files: the app takes `{name, data: None, is_file: True, orig_name}` for a file uploaded
with `POST /upload` and sends outputs in the same shape; `to_v3_files` and
`from_v3_files` map them to and from the FileData dicts `_files` uses. Nothing here
does I/O.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from enum import Enum
from typing import Any

from ..errors import ProtocolError
from .messages import Message, MsgKind, message_of

__all__ = [
    "WsControl",
    "data_body",
    "from_v3_files",
    "hash_body",
    "parse_ws",
    "predict_answer",
    "to_v3_files",
]

_FILE_META = {"_type": "gradio.FileData"}


class WsControl(str, Enum):
    """What a 3.x server asks of the client, beside the job's messages."""

    SEND_HASH = "send_hash"
    SEND_DATA = "send_data"
    QUEUE_FULL = "queue_full"


_CONTROLS = {c.value: c for c in WsControl}


def parse_ws(
    text: str,
    *,
    event_id: str,
    inline_outputs: frozenset[int] = frozenset(),
) -> WsControl | Message:
    """One websocket text frame: a request of the server, or a job message tagged with
    `event_id` (3.x has none: the client names its socket). A generator's outputs are
    whole values each time (the `ws` dialect has no diffs). Outputs at `inline_outputs`
    (3.x Images) that are data URLs become FileData, downloaded (decoded) like any output
    file."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"the app's websocket sent invalid JSON: {text[:200]!r}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"the app's websocket sent a non-object message: {text[:200]!r}")
    control = _CONTROLS.get(str(obj.get("msg", "")))
    if control is not None:
        return control
    return _job_message(obj, event_id, inline_outputs)


def _job_message(obj: dict[str, Any], event_id: str, inline_outputs: frozenset[int]) -> Message:
    obj["event_id"] = event_id
    message = message_of(obj)
    if message.data is None or message.kind not in _OUTPUTS:
        return message
    values = [
        _inline(v) if i in inline_outputs else from_v3_files(v) for i, v in enumerate(message.data)
    ]
    return _replace(message, data=values)


_OUTPUTS = frozenset({MsgKind.PROCESS_GENERATING, MsgKind.PROCESS_COMPLETED})


def _inline(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("data:") and ";base64," in value:
        mime = value[5 : value.index(";")]
        extension = {"image/jpeg": "jpg", "image/svg+xml": "svg"}.get(mime, mime.rpartition("/")[2])
        name = f"image.{extension or 'bin'}"
        return {"path": value, "orig_name": name, "meta": dict(_FILE_META)}
    return value


def predict_answer(
    status: int, body: Any, *, event_id: str, inline_outputs: frozenset[int] = frozenset()
) -> Message | None:
    """The completion a direct call's answer (`POST /api/predict`) stands for, or None
    when its status is not one the app gives for a job (left to the HTTP error checks).
    A failed function answers 500 `{"error": text or None}`."""
    if status == 200 and isinstance(body, Mapping) and isinstance(body.get("data"), list):
        obj = {"msg": "process_completed", "output": dict(body), "success": True}
    elif status == 500 and isinstance(body, Mapping) and "error" in body:
        obj = {"msg": "process_completed", "output": dict(body), "success": False}
    else:
        return None
    return _job_message(obj, event_id, inline_outputs)


def hash_body(fn_index: int, session_hash: str) -> str:
    return json.dumps({"fn_index": fn_index, "session_hash": session_hash})


def data_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs as a 3.x server reads them (from a `queue/join` body of ours)."""
    return {
        "data": [to_v3_files(v) for v in body["data"]],
        "event_data": body.get("event_data"),
        "fn_index": body["fn_index"],
        "session_hash": body["session_hash"],
    }


def to_v3_files(value: Any) -> Any:
    """Uploaded FileData dicts (also inside lists) as 3.x file dicts."""
    if isinstance(value, list):
        return [to_v3_files(v) for v in value]
    if isinstance(value, dict) and value.get("meta") == _FILE_META and "path" in value:
        return {
            "name": value["path"],
            "orig_name": value.get("orig_name"),
            "data": None,
            "is_file": True,
        }
    return value


def from_v3_files(value: Any) -> Any:
    """3.x file outputs (`is_file: True`, also inside lists) as FileData dicts, which the
    downloader fetches from the app's `/file=` route. Base64 payloads stay as they are."""
    if isinstance(value, list):
        return [from_v3_files(v) for v in value]
    if (
        isinstance(value, dict)
        and value.get("is_file") is True
        and isinstance(value.get("name"), str)
    ):
        out: dict[str, Any] = {"path": value["name"], "meta": dict(_FILE_META)}
        out["orig_name"] = value.get("orig_name") or value["name"].rsplit("/", 1)[-1]
        if isinstance(value.get("size"), int):
            out["size"] = value["size"]
        return out
    return value


def _replace(message: Message, **changes: Any) -> Message:
    return dataclasses.replace(message, **changes)
