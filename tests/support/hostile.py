"""A small hostile Gradio server for the tests: it speaks enough of Gradio 6's routes to
be connected to and sent jobs, and misbehaves on purpose where a test asks it to.

Kept apart from `fault_proxy.py`, which forwards a real app honestly and only injects
transport faults. A real app cannot send a 300 MB line, a gzip bomb or a file that never
ends; this server does, with bodies generated as they are sent (it holds none of them).

Shapes, and where they come from:

* `/config` and `/gradio_api/info` are those of the real `tests/apps/files.py`, recorded
  from gradio by `python tests/support/hostile.py --record` into
  `tests/transcripts/hostile_app.json` (`root` is rewritten to this server's URL).
* `queue/join` answers `{"event_id": <32 hex>}`; `queue/data` sends `estimation`,
  `process_starts`, `process_completed` and `close_stream` in the shapes of the protocol
  reference, section 3.1 (observed on gradio 6.31); `upload` answers a list of server
  paths, `file=<path>` the file's bytes (section 5).

Misbehaviours (attributes, changeable while it runs):

| attribute | value | what the server does |
| --- | --- | --- |
| `config`, `info` | `"gzip_bomb"` | a gzip body of ~10 MB that inflates to 10 GiB of spaces |
| `config`, `info`, `join` | `"silent"` | reads the request, never answers |
| `stream` | `"huge_line"` | `data: ` and `huge_line_bytes` (300 MB) of `x`, no newline |
| `stream` | `"heartbeats"` | only heartbeat messages, every `heartbeat_every` s, forever |
| `stream` | `"invalid_json"` | one `data:` record that is not JSON |
| `stream` | `"silent"` | the stream's headers, then nothing |
| `upload` | `"gzip_bomb"` | as above, for the upload's answer |
| `files[path]` | `Endless()` | a chunked body that never ends |

`stream_for[message]` gives the stream behaviour for the jobs whose first input is
`message` (so one job of a run misbehaves and the others do not); `outputs` is the
completion's `data` (by default the message echoed in a chat).

    with HostileServer() as server:
        server.stream = "huge_line"
        Client(server.url).predict("hi", api_name="/chat_files")  # -> LimitExceeded
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .servers import starting

__all__ = ["Endless", "HostileServer", "file_data", "gzip_bomb"]

RECORDING = Path(__file__).resolve().parent.parent / "transcripts" / "hostile_app.json"
PREFIX = "/gradio_api"
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Endless:
    """A file body that never ends (zero bytes, chunked, until the client hangs up)."""


def file_data(path: str, *, size: int | None, name: str = "out.bin") -> dict[str, Any]:
    """A FileData output as gradio 6 sends it (protocol reference, section 5.2)."""
    return {
        "path": path,
        "url": None,
        "size": size,
        "orig_name": name,
        "mime_type": None,
        "is_stream": False,
        "meta": {"_type": "gradio.FileData"},
    }


@dataclass(frozen=True)
class _Bomb:
    head: bytes
    block: bytes
    blocks: int

    @property
    def length(self) -> int:
        return len(self.head) + len(self.block) * self.blocks

    def pieces(self) -> Iterator[bytes]:
        yield self.head
        batch = self.block * max(1, _CHUNK // len(self.block))
        per_batch = len(batch) // len(self.block)
        left = self.blocks
        while left >= per_batch:
            yield batch
            left -= per_batch
        yield self.block * left


_bombs: dict[int, _Bomb] = {}


def gzip_bomb(inflated: int = 10 << 30) -> _Bomb:
    """A gzip stream of `inflated` bytes of spaces, made of one repeated deflate block.

    After a full flush the compressor starts afresh, so every further MiB of input
    compresses to the same bytes: ~1 KB of gzip per MiB, 10 MB for 10 GiB, in no time.
    (The stream has no trailer: no client under a limit ever gets that far.)"""
    if inflated not in _bombs:
        block_in = b" " * (1 << 20)
        compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
        head = compressor.compress(block_in) + compressor.flush(zlib.Z_FULL_FLUSH)
        block = compressor.compress(block_in) + compressor.flush(zlib.Z_FULL_FLUSH)
        _bombs[inflated] = _Bomb(head, block, max(0, inflated // len(block_in) - 1))
    return _bombs[inflated]


@dataclass
class _Event:
    event_id: str
    message: Any


@dataclass
class HostileServer:
    config: str = "ok"
    info: str = "ok"
    join: str = "ok"
    stream: str = "ok"
    upload: str = "ok"
    huge_line_bytes: int = 300 * 10**6
    heartbeat_every: float = 0.05
    outputs: list[Any] | None = None
    stream_for: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes | Endless] = field(default_factory=dict)
    #: Bytes sent by the routes that misbehave, by route ("config", "queue/data", ...).
    sent: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        recorded = json.loads(RECORDING.read_text())
        self._config: dict[str, Any] = recorded["config"]
        self._info: dict[str, Any] = recorded["info"]
        self._events: dict[str, list[_Event]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def __enter__(self) -> HostileServer:
        starting("the hostile server")
        handler = type("Handler", (_Handler,), {"server_state": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    # -- state used by the handler -------------------------------------------------------

    def app_config(self) -> dict[str, Any]:
        return {**self._config, "root": self.url}

    def app_info(self) -> dict[str, Any]:
        return self._info

    def add_event(self, session: str, message: Any) -> str:
        event_id = uuid.uuid4().hex
        with self._lock:
            self._events.setdefault(session, []).append(_Event(event_id, message))
        return event_id

    def take_events(self, session: str) -> list[_Event]:
        with self._lock:
            return self._events.pop(session, [])

    def count(self, route: str, size: int) -> None:
        with self._lock:
            self.sent[route] = self.sent.get(route, 0) + size

    def wait_stopped(self, seconds: float | None = None) -> None:
        self._stop.wait(seconds)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_state: HostileServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- routing -------------------------------------------------------------------------

    def do_GET(self) -> None:
        self._guard(self._get)

    def do_POST(self) -> None:
        self._guard(self._post)

    def _guard(self, handle: Any) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError, socket.timeout):
            handle()

    def _get(self) -> None:
        state = self.server_state
        parts = urlsplit(self.path)
        route, query = parts.path, parse_qs(parts.query)
        if route == "/config":
            self._json_route("config", state.config, state.app_config())
        elif route == f"{PREFIX}/info":
            self._json_route("info", state.info, state.app_info())
        elif route == f"{PREFIX}/queue/data":
            self._stream(query.get("session_hash", [""])[0])
        elif route.startswith(f"{PREFIX}/file="):
            self._file(unquote(route[len(f"{PREFIX}/file=") :]))
        else:
            self._send_json({"detail": "Not Found"}, status=404)

    def _post(self) -> None:
        state = self.server_state
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        route = urlsplit(self.path).path
        if route == f"{PREFIX}/queue/join":
            if state.join == "silent":
                state.wait_stopped()
                return
            request = json.loads(body)
            data = request.get("data") or [None]
            event_id = state.add_event(request["session_hash"], data[0])
            self._send_json({"event_id": event_id})
        elif route == f"{PREFIX}/upload":
            answer = [f"/tmp/gradio/{uuid.uuid4().hex}/upload.bin"]
            self._json_route("upload", state.upload, answer)
        elif route == f"{PREFIX}/cancel":
            self._send_json({"success": True})
        else:
            self._send_json({"detail": "Not Found"}, status=404)

    # -- answers -------------------------------------------------------------------------

    def _json_route(self, name: str, mode: str, honest: Any) -> None:
        if mode == "silent":
            self.server_state.wait_stopped()
        elif mode == "gzip_bomb":
            bomb = gzip_bomb()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-encoding", "gzip")
            self.send_header("content-length", str(bomb.length))
            self.end_headers()
            for piece in bomb.pieces():
                self.wfile.write(piece)
                self.server_state.count(name, len(piece))
        else:
            self._send_json(honest)

    def _send_json(self, value: Any, *, status: int = 200) -> None:
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _start_chunked(self, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes, route: str = "") -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        if route:
            self.server_state.count(route, len(data))

    def _end_chunked(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def _stream(self, session: str) -> None:
        state = self.server_state
        events = state.take_events(session)
        self._start_chunked("text/event-stream; charset=utf-8")
        for event in events:
            mode = state.stream_for.get(str(event.message), state.stream)
            if not self._play(mode, event):
                return
        self._message({"msg": "close_stream", "event_id": None})
        self._end_chunked()

    def _play(self, mode: str, event: _Event) -> bool:
        """Send one event's messages as `mode` says; False when the stream must end."""
        state = self.server_state
        if mode == "silent":
            state.wait_stopped()
            return False
        if mode == "huge_line":
            self._huge_line()
            return False
        if mode == "heartbeats":
            while not state.stopped:
                self._message({"msg": "heartbeat", "event_id": None})
                time.sleep(state.heartbeat_every)
            return False
        eid = event.event_id
        self._message(
            {"msg": "estimation", "event_id": eid, "rank": 0, "queue_size": 1, "rank_eta": None}
        )
        self._message({"msg": "process_starts", "event_id": eid, "eta": None})
        if mode == "invalid_json":
            cut = json.dumps(_completed(eid, state.outputs, event.message))[:60]
            self._chunk(b"data: " + cut.encode() + b"\n\n")
            return True
        self._message(_completed(eid, state.outputs, event.message))
        return True

    def _huge_line(self) -> None:
        state = self.server_state
        self._chunk(b"data: ")
        piece = b"x" * _CHUNK
        left = state.huge_line_bytes
        while left > 0 and not state.stopped:
            part = piece[: min(left, _CHUNK)]
            self._chunk(part, "queue/data")
            left -= len(part)
        self.close_connection = True

    def _message(self, message: dict[str, Any]) -> None:
        self._chunk(b"data: " + json.dumps(message).encode() + b"\n\n")

    def _file(self, path: str) -> None:
        body = self.server_state.files.get(path)
        if body is None:
            self._send_json({"detail": f"File not allowed: {path}."}, status=403)
        elif isinstance(body, Endless):
            self._start_chunked("application/octet-stream")
            zeros = bytes(_CHUNK)
            while not self.server_state.stopped:
                self._chunk(zeros, "file")
        else:
            self.send_response(200)
            self.send_header("content-type", "application/octet-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


def _completed(event_id: str, outputs: list[Any] | None, message: Any) -> dict[str, Any]:
    data = outputs if outputs is not None else [[{"role": "user", "content": message}]]
    return {
        "msg": "process_completed",
        "event_id": event_id,
        "output": {
            "data": data,
            "is_generating": False,
            "duration": 0.001,
            "average_duration": 0.001,
            "render_config": None,
            "changed_state_ids": [],
            "used_cache": None,
        },
        "success": True,
        "title": None,
        "used_cache": None,
        "cache_duration": 0.001,
        "avg_time": 0.001,
    }


def record() -> None:
    """Record `/config` and `/info` of the real files app into RECORDING."""
    import httpx

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from support.apps import start_app

    with start_app("files") as app:
        config = httpx.get(f"{app.url}/config").json()
        config["root"] = "http://127.0.0.1:7860"  # rewritten when served
        prefix = config.get("api_prefix", "")
        info = httpx.get(f"{app.url}{prefix}/info", params={"all_endpoints": "True"}).json()
    note = "recorded by `python tests/support/hostile.py --record` from tests/apps/files.py"
    RECORDING.write_text(
        json.dumps({"note": note, "config": config, "info": info}, indent=1) + "\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--record", action="store_true", help="re-record the app's shapes")
    if parser.parse_args().record:
        record()
