"""`spacerun watch RUN_DIR`: the report of a run folder served on a local port, following
the run as records arrive (a run on another machine writing to a shared disk, a folder
copied over as it grows).

The page is built here, from the folder alone, into memory: never into the folder, whose
`report.html` is the running process's own. It is rebuilt when `results.jsonl` or
`summary.json` changed, at most as often as a run's own live writes (a write may take
2% of the time, see `runner.run._live`). The folder is live until a `summary.json` newer
than the last record says the run ended: the page then stops reloading, as the run's own
final page does. The run folder's files (the gallery's images) are served read-only;
nothing else is. Loopback by default: the folder is the user's data.

    serve = WatchServer(Path("runs/sweep"), host="127.0.0.1", port=8765)
    serve.serve_forever()    # until Ctrl-C
"""

from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from ..store import RunFolder
from ._live import EVERY, SHARE
from ._resume import read_stamp

__all__ = ["WatchServer"]

log = logging.getLogger("runner")

_Signature = tuple[float, int, float]
#: The paths the page answers at (the rest are the folder's files): at the report's
#: own name in the folder, the live page stands in for it.
_PAGE_PATHS = ("/", "/" + RunFolder.at(".").report_path.name)


class _Page:
    """The latest page of the folder, rebuilt by a thread of its own when it changed."""

    def __init__(self, root: Path, every: float) -> None:
        self.root = root
        self.every = every
        self.interval = every
        self.body = b""
        self.live = True
        self.builds = 0
        self._seen: _Signature | None = None
        self._changed = threading.Event()
        self._lock = threading.Lock()

    def signature(self) -> _Signature:
        folder = RunFolder.at(self.root)
        results = _stat(folder.results_path)
        summary = _stat(folder.summary_path)
        return (results.st_mtime if results else 0.0, results.st_size if results else 0,
                summary.st_mtime if summary else 0.0)  # fmt: skip

    def refresh(self) -> None:
        """Rebuild the page if the folder changed since the last build."""
        from ..store import build_report  # jinja2 and plotly: loaded once watching

        seen = self.signature()
        if seen == self._seen:
            return
        results_mtime, _, summary_mtime = seen
        live = not summary_mtime or summary_mtime < results_mtime
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="spacerun-watch-") as tmp:
            out = Path(tmp) / "page.html"
            stamp = read_stamp(self.root)
            state = None
            if live:
                state = {
                    "refresh": max(2, math.ceil(self.interval)),
                    "note": "served by spacerun watch from the run folder",
                    **({"total": stamp.submissions} if stamp is not None else {}),
                }
            build_report(self.root, out=out, live=state)
            body = out.read_bytes()
        with self._lock:
            self.body, self.live, self._seen = body, live, seen
            self.builds += 1
        self.interval = max(self.every, (time.perf_counter() - started) / SHARE)

    def follow(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.refresh()
            except Exception:  # a folder caught mid-change: the next look tries again
                log.warning("could not build the report of %s", self.root, exc_info=True)
            stop.wait(self.interval)


def _stat(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except FileNotFoundError:
        return None


class _Handler(SimpleHTTPRequestHandler):
    page: _Page

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] in _PAGE_PATHS:
            body = self.page.body
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def list_directory(self, path: str | os.PathLike[str]) -> Any:
        self.send_error(404)  # files are served, folders are not listed
        return None

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("watch: " + format, *args)


class WatchServer:
    """The page of `root` on `host:port` (port 0: any free one), following the folder."""

    def __init__(
        self, root: Path, *, host: str = "127.0.0.1", port: int = 8765, every: float = EVERY
    ) -> None:
        folder = RunFolder.at(root)
        if not folder.root.is_dir():
            raise FileNotFoundError(f"no run folder at {folder.root}")
        self.page = _Page(folder.root, every)
        self.page.refresh()  # the first page is there before anyone asks
        handler = type("Handler", (_Handler,), {"page": self.page})
        self._server = ThreadingHTTPServer(
            (host, port), functools.partial(handler, directory=str(folder.root))
        )
        self._stop = threading.Event()
        self._follower = threading.Thread(target=self.page.follow, args=(self._stop,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/"

    def serve_forever(self) -> None:
        self._follower.start()
        try:
            self._server.serve_forever()
        finally:
            self._stop.set()
            self._server.server_close()

    def shutdown(self) -> None:
        """Stop `serve_forever` (from another thread)."""
        self._server.shutdown()
