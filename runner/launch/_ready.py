"""Is a started copy ready? Reading its log (sans-IO) and polling its /config.

A copy is ready when GET /config answers 200 (or 401, for an app behind a login: the
server is up, the client logs in later). While it starts, a progress line every
`progress_every` seconds carries the last line of its log (`local-2 still starting
(40 s): Loading checkpoint shards 3/5`). It is not going to be ready, and the wait ends
at once, when the process exits, or when its log says it listens on another port (an app
that starts its server in a way the bootstrap does not redirect, such as `uvicorn.run`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx

from ._procs import wait_exit

__all__ = ["NotReady", "Startup", "last_line", "listening_elsewhere", "port_clash"]

_POLL_FIRST, _POLL_MAX, _POLL_GROWTH = 0.05, 0.5, 1.5  # readiness poll interval, s
_REQUEST_TIMEOUT = 5.0
# What gradio (and uvicorn under it) print when the port was taken in the meantime.
_PORT_CLASH_MARKERS = ("cannot find empty port", "address already in use")
# gradio: "* Running on local URL:  http://127.0.0.1:7860"; uvicorn: "Uvicorn running on
# http://0.0.0.0:8000 (Press CTRL+C to quit)". A share link ("public URL") is not matched.
_LISTENING = re.compile(r"running on (?:local url:\s*)?(https?://[^\s/]+)", re.IGNORECASE)
_OWN_LINES = "--- spacerun:"  # the header spacerun writes before each start
_LAST_LINE_CHARS = 160


class NotReady(Exception):
    """Why a copy is not ready (`why` completes "local copy X of app.py on port N ...");
    `advice` says what to do. Turned into a LocalAppError once the copy is stopped."""

    def __init__(self, why: str, *, advice: str = "", port_clash: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.advice = advice
        self.port_clash = port_clash


def port_clash(log_text: str) -> bool:
    """The log says the port was taken by someone else."""
    lowered = log_text.lower()
    return any(marker in lowered for marker in _PORT_CLASH_MARKERS)


def listening_elsewhere(log_text: str, port: int) -> str | None:
    """The URL the log says the app listens on, when it is not `port`; else None."""
    for match in _LISTENING.finditer(log_text):
        url = match.group(1)
        try:
            found = urlsplit(url).port
        except ValueError:
            continue
        if found is not None and found != port:
            return url
    return None


def last_line(log_text: str) -> str:
    """The last line the app wrote (a progress bar's latest state), shortened."""
    for line in reversed(log_text.splitlines()):
        # A progress bar rewrites its line with carriage returns: its last state counts.
        text = line.rsplit("\r", 1)[-1].strip() or line.strip()
        if text and not text.startswith(_OWN_LINES):
            return text if len(text) <= _LAST_LINE_CHARS else text[: _LAST_LINE_CHARS - 1] + "…"
    return "(nothing in its log yet)"


@dataclass(slots=True, kw_only=True)
class Startup:
    """One start of one copy, until it answers: `await wait()` or NotReady."""

    name: str
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    #: The log written since this start began (a callable, so it is read fresh).
    log: Callable[[], str]
    ready_timeout: float
    progress_every: float
    on_status: Callable[[str], None]

    async def wait(self) -> None:
        """Poll GET /config at a growing interval until it answers; raise NotReady when
        the process exits, its log shows it on another port, or the deadline passes.
        Wakes at once on an exit."""
        began = anyio.current_time()
        deadline = began + self.ready_timeout
        next_progress = began + self.progress_every
        delay = _POLL_FIRST
        async with httpx.AsyncClient(trust_env=False) as http:
            while True:
                self._check_alive()
                remaining = deadline - anyio.current_time()
                if await _answers(http, f"{self.url}/config", min(_REQUEST_TIMEOUT, remaining)):
                    return
                now = anyio.current_time()
                if now >= deadline:
                    raise NotReady(
                        f"did not answer GET {self.url}/config within "
                        f"{self.ready_timeout:g} s (stopped it)",
                        advice="if it needs longer to load (a model, say), raise ready_timeout "
                        "for this replica in the manifest (e.g. ready_timeout: 30m)",
                    )
                if now >= next_progress:
                    elapsed = now - began
                    self.on_status(
                        f"{self.name} still starting ({elapsed:.0f} s): {last_line(self.log())}"
                    )
                    next_progress = now + self.progress_every
                await wait_exit(self.proc, min(delay, deadline - now))
                delay = min(delay * _POLL_GROWTH, _POLL_MAX)

    def _check_alive(self) -> None:
        text = self.log()
        if self.proc.poll() is not None:
            raise NotReady(
                "exited before it was ready",
                advice="fix what its log below shows (run the script by hand to try it)",
                port_clash=port_clash(text),
            )
        elsewhere = listening_elsewhere(text, self.port)
        if elsewhere is not None:
            raise NotReady(
                f"listens on {elsewhere}, not on port {self.port} that spacerun gave it",
                advice="spacerun redirects gradio's launch(), but this app starts its server "
                "another way; make it listen on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT "
                "(spacerun sets both)",
            )


async def _answers(http: httpx.AsyncClient, url: str, seconds: float) -> bool:
    try:
        response = await http.get(url, timeout=max(seconds, 0.1))
    except httpx.TransportError:
        return False
    return response.status_code in (200, 401)
