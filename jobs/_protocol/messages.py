"""Gradio's sse_v3 queue messages, parsed into typed values (sans-IO).

`parse_message` turns one `data:` payload of `queue/data` into a `Message`;
`apply_diff` rebuilds a generator's output from the edit ops that sse_v2+ servers send
after the first full value. Nothing here does I/O.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from ..errors import ProtocolError

__all__ = ["Message", "MsgKind", "ProgressUnit", "apply_diff", "message_of", "parse_message"]


class MsgKind(str, Enum):
    ESTIMATION = "estimation"
    PROCESS_STARTS = "process_starts"
    PROGRESS = "progress"
    LOG = "log"
    PROCESS_GENERATING = "process_generating"
    PROCESS_STREAMING = "process_streaming"
    PROCESS_COMPLETED = "process_completed"
    HEARTBEAT = "heartbeat"
    CLOSE_STREAM = "close_stream"
    UNEXPECTED_ERROR = "unexpected_error"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressUnit:
    """One `gr.Progress` bar: `index` of `length` `unit`s, or a fraction in `progress`."""

    index: int | None = None
    length: int | None = None
    unit: str | None = None
    progress: float | None = None
    desc: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One message of a session's event stream. Fields not used by a kind stay None."""

    kind: MsgKind
    event_id: str | None = None
    rank: int | None = None
    queue_size: int | None = None
    eta: float | None = None
    success: bool | None = None
    #: Output values: full on the first generating message and on completion; for later
    #: generating messages of sse_v2+ servers, per-output lists of diff ops (`is_diff`).
    data: list[Any] | None = None
    is_diff: bool = False
    #: Error text of a failed completion (None when the app hides errors), or the
    #: message of an `unexpected_error`, or the text of a `log`.
    text: str | None = None
    title: str | None = None
    level: str | None = None
    progress: tuple[ProgressUnit, ...] = field(default_factory=tuple)
    session_not_found: bool = False
    #: Seconds the app spent on the event, as it reports on completion (None if not).
    duration: float | None = None
    raw_kind: str = ""


_KINDS = {kind.value: kind for kind in MsgKind}


def parse_message(payload: str, *, after_first_output: bool = False) -> Message:
    """Parse one `data:` payload. `after_first_output` tells whether the job already got a
    full generating value, which makes later generating payloads diffs."""
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise ProtocolError(f"the event stream sent invalid JSON: {payload[:200]!r}") from exc
    if not isinstance(obj, dict):
        raise ProtocolError(f"the event stream sent a non-object message: {payload[:200]!r}")
    return message_of(obj, after_first_output=after_first_output)


def message_of(obj: dict[str, Any], *, after_first_output: bool = False) -> Message:
    """The `Message` of one decoded message object (as `parse_message`, for a transport
    that frames messages itself: gradio 3.x's websocket)."""
    raw_kind = str(obj.get("msg", ""))
    kind = _KINDS.get(raw_kind, MsgKind.UNKNOWN)
    event_id = obj.get("event_id")
    if event_id is not None and not isinstance(event_id, str):
        raise ProtocolError(f"the event stream sent a message with a bad event_id: {event_id!r}")
    if kind is MsgKind.ESTIMATION:
        return Message(
            kind=kind,
            event_id=event_id,
            rank=obj.get("rank"),
            queue_size=obj.get("queue_size"),
            eta=obj.get("rank_eta"),
        )
    if kind is MsgKind.PROCESS_STARTS:
        return Message(kind=kind, event_id=event_id, eta=obj.get("eta"))
    if kind is MsgKind.PROGRESS:
        units = tuple(_progress_unit(p) for p in obj.get("progress_data") or ())
        return Message(kind=kind, event_id=event_id, progress=units)
    if kind is MsgKind.LOG:
        return Message(
            kind=kind,
            event_id=event_id,
            text=obj.get("log"),
            level=obj.get("level"),
            title=obj.get("title"),
        )
    if kind in (MsgKind.PROCESS_GENERATING, MsgKind.PROCESS_STREAMING):
        output = obj.get("output") or {}
        if not isinstance(output, dict):
            raise ProtocolError(f"the event stream sent a non-object output: {output!r:.200}")
        return Message(
            kind=kind,
            event_id=event_id,
            success=obj.get("success", True),
            data=output.get("data"),
            is_diff=after_first_output,
        )
    if kind is MsgKind.PROCESS_COMPLETED:
        return _completed(obj, event_id)
    if kind is MsgKind.UNEXPECTED_ERROR:
        return Message(
            kind=kind,
            event_id=event_id,
            success=False,
            text=obj.get("message"),
            session_not_found=bool(obj.get("session_not_found")),
        )
    return Message(kind=kind, event_id=event_id, raw_kind=raw_kind)


def _completed(obj: dict[str, Any], event_id: str | None) -> Message:
    output = obj.get("output")
    success = bool(obj.get("success"))
    if success:
        # A cancelled event completes "successfully" with an empty output and no data.
        data = output.get("data") if isinstance(output, dict) else None
        duration = output.get("duration") if isinstance(output, dict) else None
        return Message(
            kind=MsgKind.PROCESS_COMPLETED,
            event_id=event_id,
            success=True,
            data=data,
            duration=float(duration) if isinstance(duration, (int, float)) else None,
        )
    error = output.get("error") if isinstance(output, dict) else None
    title = obj.get("title") or (output.get("title") if isinstance(output, dict) else None)
    return Message(
        kind=MsgKind.PROCESS_COMPLETED,
        event_id=event_id,
        success=False,
        text=_unquote_error(error),
        title=title,
    )


def _unquote_error(error: Any) -> str | None:
    if error is None:
        return None
    text = str(error)
    # gradio 4.x sends the gr.Error text repr-quoted: "'custom failure: boom'".
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _progress_unit(raw: Any) -> ProgressUnit:
    if not isinstance(raw, dict):
        return ProgressUnit()
    return ProgressUnit(
        index=raw.get("index"),
        length=raw.get("length"),
        unit=raw.get("unit"),
        progress=raw.get("progress"),
        desc=raw.get("desc"),
    )


def apply_diff(value: Any, ops: Any) -> Any:
    """Apply one output's list of `[op, path, value]` edits to a copy of `value`."""
    if not isinstance(ops, list):
        raise ProtocolError(f"expected a list of diff ops, got {type(ops).__name__}")
    result = copy.deepcopy(value)
    for op in ops:
        if not isinstance(op, list) or len(op) != 3:
            raise ProtocolError(f"malformed diff op: {op!r}")
        action, path, new = op
        result = _apply_op(result, action, list(path), new)
    return result


def _apply_op(target: Any, action: str, path: list[Any], new: Any) -> Any:
    if not path:
        if action == "replace":
            return new
        if action == "append":
            return target + new
        raise ProtocolError(f"diff op {action!r} needs a path")
    parent = target
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "replace":
        parent[last] = new
    elif action == "append":
        parent[last] = parent[last] + new
    elif action == "add":
        if isinstance(parent, list):
            parent.insert(last, new)
        else:
            parent[last] = new
    elif action == "delete":
        del parent[last]
    else:
        raise ProtocolError(f"unknown diff op {action!r}")
    return target
