"""A local webhook receiver: records every JSON body POSTed to it, by path.

    with WebhookReceiver(fail_paths={"/broken"}) as hooks:
        url = hooks.url("/slack")          # http://127.0.0.1:PORT/slack
        ...
        hooks.bodies("/slack")             # [{"text": ...}, ...] in the order received

A path in `fail_paths` answers 500 (after recording the body), as a broken webhook does.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = ["WebhookReceiver"]


class WebhookReceiver:
    def __init__(self, *, fail_paths: frozenset[str] | set[str] = frozenset()) -> None:
        self.received: list[tuple[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                with receiver._lock:
                    receiver.received.append((self.path, body))
                status = 500 if self.path in fail_paths else 204
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the test reads `received`

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def bodies(self, path: str) -> list[Any]:
        with self._lock:
            return [body for at, body in self.received if at == path]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
