"""Sans-IO Server-Sent Events decoding: bytes in, `data` payloads out.

Gradio's `queue/data` stream sends `data: <json>` records separated by blank lines and
no other fields, but the decoder follows the SSE spec (CR/LF/CRLF line ends, multi-line
`data`, comments, `event:` names) so a proxy that reframes the stream does not break it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSentEvent:
    data: str
    event: str = "message"


class SSEDecoder:
    """Feed raw bytes with `feed`; it returns the events completed by them."""

    __slots__ = ("_buffer", "_data", "_event", "_pending_cr")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event = ""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if self._pending_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._pending_cr = False
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            # A CR at the very end may be the first half of a CRLF split across chunks.
            self._pending_cr = buffer.endswith(b"\r")
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        events: list[ServerSentEvent] = []
        for raw in lines:
            event = self._line(raw.decode("utf-8", errors="replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerSentEvent(data="\n".join(self._data), event=self._event or "message")
            self._data = []
            self._event = ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    @property
    def has_partial(self) -> bool:
        """True when bytes of an unfinished event are buffered (the stream was cut mid-event)."""
        return bool(self._buffer or self._data)
