"""A fault-injecting HTTP/1.1 reverse proxy to put in front of a real Gradio app.

Real apps cannot answer 429 / 5xx, drop an event stream or stall on demand; this
proxy does, by rules that a test may add and remove while it runs. Everything
else passes through unchanged and streamed (SSE chunk by chunk, no buffering):
headers and cookies both ways, request bodies (JSON, multipart), keep-alive.

    with FaultProxy(app_url) as proxy:
        proxy.add_rule(Rule(path="queue/join", method="POST", times=3,
                            action=Respond.too_many_requests(retry_after=2)))
        ...  # point the client under test at proxy.url
        assert proxy.counts("queue/join", status=429) == 3

The proxy runs its own event loop in a daemon thread, so sync and async tests
use it alike; every public method is thread-safe and non-blocking except
`start`, `stop`, `refuse_connections` and `wait_for`.

Client side: asyncio streams parsed by h11 (so we control the socket: cut,
stall, refuse). Upstream side: one `httpx.AsyncClient`, responses read raw (still
compressed) and re-framed. `Host` is rewritten to the upstream's, and
`X-Forwarded-Host`/`-Proto` carry the proxy's address, as the Spaces proxy does,
so the URLs Gradio builds (`/config` root, file URLs) point back at the proxy.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Any, TypeVar

import h11
import httpx

from .servers import starting

__all__ = [
    "Action",
    "CutStream",
    "Delay",
    "Disconnect",
    "Exchange",
    "FaultProxy",
    "Respond",
    "Rule",
    "Stall",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

_HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization",
        b"proxy-connection", b"te", b"trailer", b"transfer-encoding", b"upgrade",
    }
)  # fmt: skip
# Gradio ends each SSE message with a blank line; "\r\n\r\n" for other servers.
_SSE_END = re.compile(rb"\r\n\r\n|\n\n")


# --- actions -----------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Respond:
    """Answer from the proxy itself; the request never reaches the app."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def too_many_requests(cls, retry_after: int = 1) -> Respond:
        """A 429 with `Retry-After` and a JSON body, as the Spaces proxy sends."""
        body = {"error": f"Too many requests, retry after {retry_after} seconds"}
        return cls(
            status=429,
            headers={"retry-after": str(retry_after), "content-type": "application/json"},
            body=json.dumps(body).encode(),
        )

    @classmethod
    def error(cls, status: int = 503, detail: str | None = None) -> Respond:
        """A JSON `{"detail": ...}` error, the shape Gradio's own errors have."""
        text = detail if detail is not None else _reason(status).decode()
        return cls(
            status=status,
            headers={"content-type": "application/json"},
            body=json.dumps({"detail": text}).encode(),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CutStream:
    """Forward the response, then close the connection mid-body (a dying server).

    The cut comes after `after_messages` SSE messages or `after_bytes` body bytes,
    whichever first; with neither, right after the response head. The client
    sees an incomplete chunked body (httpx: `RemoteProtocolError`), and the app
    sees its client go away (Gradio then drops that session's jobs).
    """

    after_messages: int | None = None
    after_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stall:
    """Forward the response up to a point, then stop forwarding, connection open.

    Same limits as `CutStream`. The stall lasts until `FaultProxy.release_stalls()`
    (forwarding then resumes where it stopped), the client hangs up, or the proxy
    stops.
    """

    after_messages: int | None = None
    after_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Delay:
    """Hold the request `seconds` before forwarding it (a slow or waking server).

    With `after_upstream`, the request is forwarded at once and the response head
    is held instead: the app has done the work when the client gives up waiting.
    """

    seconds: float
    after_upstream: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Disconnect:
    """Close the connection without any response (no status line at all).

    With `forward`, the request reaches the app first and only the answer is lost.
    """

    forward: bool = False


Action = Respond | CutStream | Stall | Delay | Disconnect


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Rule:
    """Apply `action` to requests whose path (no query) matches the regex `path`.

    `method` None matches any method. `times` limits how many requests the rule
    hits (None: every matching one until removed); `probability` applies it to a
    fraction of matching requests, drawn from `random.Random(seed)`. The first
    rule (in insertion order) that matches and fires wins.
    """

    path: str
    action: Action
    method: str | None = None
    times: int | None = None
    probability: float | None = None
    seed: int | None = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Exchange:
    """One request as the proxy handled it; `status` None means no response was sent."""

    connection: int
    method: str
    target: str
    status: int | None
    fault: str | None

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    def __str__(self) -> str:
        fault = f" [{self.fault}]" if self.fault else ""
        return f"{self.method} {self.target} -> {self.status}{fault}"


class _RuleState:
    """The mutable side of a rule: budget left, its RNG, how often it fired."""

    def __init__(self, rule: Rule) -> None:
        self.rule = rule
        self.pattern = re.compile(rule.path)
        self.left = rule.times
        self.rng = random.Random(rule.seed)
        self.hits = 0

    def fires(self, method: str, path: str) -> bool:
        rule = self.rule
        if rule.method is not None and rule.method.upper() != method:
            return False
        if self.left is not None and self.left <= 0:
            return False
        if not self.pattern.search(path):
            return False
        # Draw only for matching requests, so the sequence is a function of the seed
        # and the matching traffic alone.
        if rule.probability is not None and self.rng.random() >= rule.probability:
            return False
        if self.left is not None:
            self.left -= 1
        self.hits += 1
        return True


class _Meter:
    """Counts body bytes and SSE messages to find where a cut or stall begins."""

    def __init__(self, messages: int | None, nbytes: int | None) -> None:
        self.messages = messages
        self.nbytes = nbytes
        self._tail = b""

    @property
    def exhausted(self) -> bool:
        return self.messages == 0 or self.nbytes == 0

    def split(self, chunk: bytes) -> tuple[bytes, bytes | None]:
        """(bytes to forward, rest after the limit) - rest is None if not reached."""
        cut = len(chunk)
        if self.nbytes is not None and self.nbytes <= cut:
            cut = self.nbytes
        if self.messages is not None:
            cut = min(cut, self._message_cut(chunk))
        if self.nbytes is not None:
            self.nbytes -= cut
        if self.exhausted:
            return chunk[:cut], chunk[cut:]
        return chunk, None

    def _message_cut(self, chunk: bytes) -> int:
        # A separator may straddle two chunks: scan the previous chunk's last bytes
        # too, counting only separators that end inside this chunk.
        assert self.messages is not None
        buf = self._tail + chunk
        offset = len(self._tail)
        self._tail = buf[-3:]
        for match in _SSE_END.finditer(buf):
            if match.end() <= offset:
                continue
            self.messages -= 1
            if self.messages == 0:
                return match.end() - offset
        return len(chunk)


class _Closed(Exception):
    """The client connection must be closed now (a fault, or the client left)."""


# --- one client connection ---------------------------------------------------


class _Connection:
    def __init__(
        self, number: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.number = number
        self.reader = reader
        self.writer = writer
        self.h11 = h11.Connection(h11.SERVER)

    async def next_request(self) -> tuple[h11.Request, bytes] | None:
        """The next request and its whole body, or None once the client is done."""
        request = await self._next_event()
        if not isinstance(request, h11.Request):
            return None
        body = bytearray()
        while True:
            event = await self._next_event()
            if isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return request, bytes(body)
            else:
                return None

    async def _next_event(self) -> Any:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            self.h11.receive_data(await self.reader.read(65536))

    async def client_gone(self) -> None:
        """Return when the client closes its side (used while a response streams)."""
        while data := await self.reader.read(65536):
            self.h11.receive_data(data)  # pipelined request: h11 keeps it for later

    async def send(self, event: Any) -> None:
        data = self.h11.send(event)
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def send_head(self, status: int, headers: list[tuple[bytes, bytes]]) -> None:
        await self.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))

    async def respond(self, action: Respond) -> None:
        headers = [(k.encode(), v.encode()) for k, v in action.headers.items()]
        headers.append((b"content-length", str(len(action.body)).encode()))
        await self.send_head(action.status, headers)
        await self.send(h11.Data(data=action.body))
        await self.send(h11.EndOfMessage())

    def reusable(self) -> bool:
        if self.h11.our_state is not h11.DONE or self.h11.their_state is not h11.DONE:
            return False
        self.h11.start_next_cycle()
        return True


# --- the proxy ---------------------------------------------------------------


class FaultProxy:
    """A reverse proxy in front of `upstream` (e.g. "http://127.0.0.1:7860").

    Start it with `start()` or `with`; point clients at `url`. Rules decide the
    faults (`add_rule`); `counts`, `wait_for` and `last_requests` tell what
    happened. `port=0` picks a free port, kept across `refuse_connections`.
    """

    def __init__(
        self,
        upstream: str,
        *,
        port: int = 0,
        forwarded_headers: bool = True,
        history: int = 10_000,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self._port = port
        self._forwarded_headers = forwarded_headers
        self._lock = threading.Condition()
        self._rules: list[_RuleState] = []
        self._counts: Counter[tuple[str, str, int | None]] = Counter()
        self._history: deque[Exchange] = deque(maxlen=history)
        self._numbers = itertools.count(1)
        self._accepted = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._release: asyncio.Event | None = None

    def __repr__(self) -> str:
        state = "listening" if self._server else "stopped/refusing"
        return f"<FaultProxy {self.url} -> {self.upstream} [{state}, {len(self._rules)} rules]>"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def connections_accepted(self) -> int:
        """How many client connections the proxy accepted (keep-alive reuses one)."""
        return self._accepted

    # lifecycle

    def start(self) -> FaultProxy:
        starting("the fault proxy")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=self._run_loop, name="fault-proxy", daemon=True)
        self._thread.start()
        try:
            self._call(self._open())
        except BaseException:
            self._end_loop()  # e.g. the port is taken: leave no thread behind
            raise
        return self

    def stop(self) -> None:
        """Drop every connection, close the upstream client, end the thread."""
        if self._loop is None:
            return
        try:
            self._call(self._close())
        finally:
            self._end_loop()

    def _end_loop(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop, self._thread = None, None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # configuration (any thread)

    def add_rule(self, rule: Rule) -> Rule:
        with self._lock:
            self._rules.append(_RuleState(rule))
        return rule

    def remove_rule(self, rule: Rule) -> None:
        with self._lock:
            self._rules = [state for state in self._rules if state.rule is not rule]

    def clear_rules(self) -> None:
        with self._lock:
            self._rules.clear()

    def hits(self, rule: Rule) -> int:
        """How many requests `rule` has been applied to (0 once removed)."""
        with self._lock:
            return sum(state.hits for state in self._rules if state.rule is rule)

    def refuse_connections(self, on: bool = True) -> None:
        """Stop listening (clients get "connection refused") or listen again.

        Turning refusal on also drops every open connection, in-flight responses
        included, so pooled keep-alive connections fail too, as when a server dies.
        """
        self._call(self._refuse(on))

    def release_stalls(self) -> None:
        """Let every stalled response resume; later stalls wait again."""
        loop = self._require_loop()
        loop.call_soon_threadsafe(self._release_stalls)

    # observation (any thread)

    def counts(
        self,
        path_pattern: str | None = None,
        status: int | None = None,
        *,
        method: str | None = None,
    ) -> int:
        """Requests answered so far whose path matches the regex `path_pattern`.

        Filters are optional; `status` is what the client got (a forwarded status
        or an injected one). Requests closed without a response are not counted
        under any status, only when `status` is left out.
        """
        pattern = re.compile(path_pattern) if path_pattern is not None else None
        with self._lock:
            return sum(
                n
                for (m, path, got), n in self._counts.items()
                if (method is None or m == method.upper())
                and (status is None or got == status)
                and (pattern is None or pattern.search(path))
            )

    def wait_for(
        self,
        path_pattern: str | None,
        count: int = 1,
        *,
        status: int | None = None,
        method: str | None = None,
        timeout: float = 10.0,
    ) -> int:
        """Block until `counts(...)` reaches `count`; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while (seen := self.counts(path_pattern, status, method=method)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"{seen} of {count} requests matching {path_pattern!r}")
                self._lock.wait(left)
            return seen

    def last_requests(self, n: int = 20) -> list[Exchange]:
        with self._lock:
            return list(self._history)[-n:]

    def reset_counts(self) -> None:
        with self._lock:
            self._counts.clear()
            self._history.clear()

    # event loop plumbing

    def _run_loop(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()

    def _require_loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("the proxy is not running; call start() first")
        return self._loop

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        loop = self._require_loop()
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("blocking FaultProxy call from inside the proxy's own loop")
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=30)

    async def _open(self) -> None:
        self._release = asyncio.Event()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, read=None, pool=None),
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=100),
            follow_redirects=False,
            trust_env=False,
        )
        await self._listen()

    async def _close(self) -> None:
        await self._refuse(True)
        if self._client is not None:
            await self._client.aclose()

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._on_connection, "127.0.0.1", self._port, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _refuse(self, on: bool) -> None:
        if not on:
            if self._server is None:
                await self._listen()
            return
        if self._server is not None:
            self._server.close()  # the listening socket only; open connections below
            self._server = None
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _release_stalls(self) -> None:
        assert self._release is not None
        self._release.set()
        self._release = asyncio.Event()

    # serving

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._server is None:  # accepted just before refuse_connections() closed it
            writer.transport.abort()
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._accepted += 1
        conn = _Connection(next(self._numbers), reader, writer)
        try:
            while (request := await conn.next_request()) is not None:
                await self._handle(conn, *request)
                if not conn.reusable():
                    break
        except asyncio.CancelledError:
            # Dropped by refuse_connections/stop: like a dead server, nothing flushed.
            writer.transport.abort()
        except (_Closed, OSError, h11.ProtocolError):
            pass  # a fault or a client that left: the connection ends below
        except Exception:
            log.exception("fault proxy: connection %d failed", conn.number)
        finally:
            self._tasks.discard(task)
            # close(), not abort(): a cut stream must still deliver what it sent.
            writer.close()

    def _pick(self, method: str, path: str) -> Action | None:
        with self._lock:
            for state in self._rules:
                if state.fires(method, path):
                    return state.rule.action
        return None

    def _record(self, conn: _Connection, method: str, target: str, status: int | None,
                action: Action | None) -> None:  # fmt: skip
        fault = type(action).__name__ if action is not None else None
        exchange = Exchange(
            connection=conn.number, method=method, target=target, status=status, fault=fault
        )
        with self._lock:
            self._counts[method, exchange.path, status] += 1
            self._history.append(exchange)
            self._lock.notify_all()

    async def _handle(self, conn: _Connection, request: h11.Request, body: bytes) -> None:
        method, target = request.method.decode(), request.target.decode()
        action = self._pick(method, target.split("?", 1)[0])
        if isinstance(action, Respond):
            self._record(conn, method, target, action.status, action)
            await conn.respond(action)
            return
        if isinstance(action, Disconnect) and not action.forward:
            self._record(conn, method, target, None, action)
            raise _Closed
        if isinstance(action, Delay) and not action.after_upstream:
            await asyncio.sleep(action.seconds)
        try:
            response = await self._forward(request, body)
        except httpx.HTTPError as exc:
            self._record(conn, method, target, 502, action)
            await conn.respond(Respond.error(502, f"fault proxy: upstream failed: {exc!r}"))
            return
        try:
            await self._relay(conn, method, target, response, action)
        finally:
            await response.aclose()

    async def _forward(self, request: h11.Request, body: bytes) -> httpx.Response:
        assert self._client is not None
        headers: list[tuple[bytes, bytes]] = []
        host = b""
        for name, value in request.headers:
            if name == b"host":
                host = value
            elif name not in _HOP_BY_HOP:  # h11 lower-cases header names
                headers.append((name, value))
        if (
            self._forwarded_headers
            and host
            and not any(n == b"x-forwarded-host" for n, _ in headers)
        ):
            headers += [(b"x-forwarded-host", host), (b"x-forwarded-proto", b"http")]
        upstream = httpx.Request(
            request.method.decode(),
            self.upstream + request.target.decode(),
            headers=headers,
            content=body,
        )  # httpx sets Host from the URL
        return await self._client.send(upstream, stream=True)

    async def _relay(self, conn: _Connection, method: str, target: str,
                     response: httpx.Response, action: Action | None) -> None:  # fmt: skip
        if isinstance(action, Disconnect):
            self._record(conn, method, target, None, action)
            raise _Closed
        if isinstance(action, Delay) and action.after_upstream:
            await asyncio.sleep(action.seconds)
        headers = [
            (name, value) for name, value in response.headers.raw if name.lower() not in _HOP_BY_HOP
        ]
        self._record(conn, method, target, response.status_code, action)
        await conn.send_head(response.status_code, headers)
        # Watch the client while the body streams: if it hangs up, stop reading
        # upstream at once so the app sees the disconnect (Gradio cancels work then).
        pump = asyncio.ensure_future(self._pump(conn, response, action))
        gone = asyncio.ensure_future(conn.client_gone())
        try:
            await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, gone):
                task.cancel()
            await asyncio.gather(pump, gone, return_exceptions=True)
        if not pump.done() or pump.cancelled() or pump.exception() is not None:
            raise _Closed
        await conn.send(h11.EndOfMessage())

    async def _pump(
        self, conn: _Connection, response: httpx.Response, action: Action | None
    ) -> None:
        meter = (
            _Meter(action.after_messages, action.after_bytes)
            if isinstance(action, (CutStream, Stall))
            else None
        )
        if meter is not None and meter.exhausted:
            await self._limit_reached(conn, action)
            meter = None
        async for chunk in response.aiter_raw():
            rest: bytes | None = None
            if meter is not None:
                chunk, rest = meter.split(chunk)
            if chunk:
                await conn.send(h11.Data(data=chunk))
            if rest is not None:
                await self._limit_reached(conn, action)
                meter = None
                if rest:
                    await conn.send(h11.Data(data=rest))

    async def _limit_reached(self, conn: _Connection, action: Action | None) -> None:
        if isinstance(action, CutStream):
            raise _Closed  # what was sent is flushed; the connection closes unfinished
        assert self._release is not None
        await self._release.wait()  # a Stall: until released, or cancelled by client_gone


def _reason(status: int) -> bytes:
    try:
        return HTTPStatus(status).phrase.encode()
    except ValueError:
        return b""
