"""Sans-IO Server-Sent Events decoding: bytes in, `data` payloads out.

Gradio's `queue/data` stream sends `data: <json>` records separated by blank lines and
no other fields, but the decoder follows the SSE spec (CR/LF/CRLF line ends, multi-line
`data`, comments, `event:` names) so a proxy that reframes the stream does not break it.

Each chunk is scanned once: complete lines are cut out of it directly, and only the
unfinished tail goes into one growing buffer, so a long line costs linear time. A line
(or the `data` of one event) longer than `max_bytes` raises `LimitExceeded` as soon as
the buffer passes the limit, so memory stays bounded whatever the server sends.

Most chunks are whole `data: ` events and nothing else (a job waiting in an app's queue
gets one for every job that starts ahead of it): those are split at once, without the
line-by-line state machine, with exactly the same events as a result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .limits import over_limit

__all__ = ["SSEDecoder", "ServerSentEvent"]

_EOL = re.compile(rb"\r\n?|\n")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSentEvent:
    data: str
    event: str = "message"


class SSEDecoder:
    """Feed raw bytes with `feed`; it returns the events completed by them.

    `max_bytes` bounds one line and the `data` of one event; `limit_name` and `url` go
    into the `LimitExceeded` raised past it."""

    __slots__ = (
        "_buffer",
        "_data",
        "_data_bytes",
        "_event",
        "_limit_name",
        "_max",
        "_pending_cr",
        "_url",
    )

    def __init__(
        self,
        *,
        max_bytes: int = 64 << 20,
        limit_name: str = "max_message_bytes",
        url: str | None = None,
    ) -> None:
        self._buffer = bytearray()
        self._data: list[str] = []
        self._data_bytes = 0
        self._event = ""
        self._pending_cr = False
        self._max = max_bytes
        self._limit_name = limit_name
        self._url = url

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        if (
            chunk.endswith(b"\n\n")
            and not (self._buffer or self._data or self._pending_cr or self._event)
            and len(chunk) <= self._max
            and b"\r" not in chunk
        ):
            whole = _whole_events(chunk)
            if whole is not None:
                return whole
        start = 0
        if self._pending_cr and chunk[:1] == b"\n":
            start = 1  # the second half of a CRLF split across chunks
        if chunk:
            self._pending_cr = False
        events: list[ServerSentEvent] = []
        while True:
            end = _EOL.search(chunk, start)
            if end is None:
                self._buffer += memoryview(chunk)[start:]
                self._check(len(self._buffer))
                return events
            if self._buffer:
                self._buffer += memoryview(chunk)[start : end.start()]
                self._check(len(self._buffer))
                line = self._buffer.decode("utf-8", errors="replace")
                self._buffer = bytearray()  # a large buffer is not kept for later
            else:
                self._check(end.start() - start)
                line = chunk[start : end.start()].decode("utf-8", errors="replace")
            if end.group() == b"\r" and end.end() == len(chunk):
                self._pending_cr = True
            start = end.end()
            event = self._line(line)
            if event is not None:
                events.append(event)

    def _check(self, size: int) -> None:
        if size + self._data_bytes > self._max:
            self._buffer = bytearray()
            self._data = []
            raise over_limit(
                "a message of the event stream", limit=self._limit_name, value=self._max,
                url=self._url,
            )  # fmt: skip

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerSentEvent(data="\n".join(self._data), event=self._event or "message")
            self._data = []
            self._data_bytes = 0
            self._event = ""
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._data_bytes += len(value) + 1
        elif name == "event":
            self._event = value
        return None

    @property
    def has_partial(self) -> bool:
        """True when bytes of an unfinished event are buffered (the stream was cut mid-event)."""
        return bool(self._buffer or self._data)


def _whole_events(chunk: bytes) -> list[ServerSentEvent] | None:
    """The events of a chunk made only of one-line `data: ` events, each ended by a
    blank line; None for anything else (left to the full decoder)."""
    events = []
    # A chunk ends at a line end (it ends with a blank line), so no UTF-8 sequence is cut.
    for block in chunk.decode("utf-8", errors="replace")[:-2].split("\n\n"):
        if not block.startswith("data: ") or "\n" in block:
            return None
        events.append(ServerSentEvent(data=block[6:]))
    return events
