"""A gradio 3.x session: jobs over one websocket each at `/queue/join`, or a direct
`POST /api/predict` for what the app runs outside its queue.

It stands where `_session.Session` stands for sse_v3 apps, with the same methods, so
`AsyncJob` drives both alike. What 3.x cannot do, and what is done instead:

* no event ids: the socket is the job (an id is made up here to name it);
* no `/cancel`: a job is cancelled by closing its socket and `POST /reset` of the
  session's iterator for that function. A queued job is then dropped by the app, a
  generator stops after its current step; a running plain function runs to its end on
  the app (its result is thrown away), so `cancel(force=True)` frees the client at once
  but not the app's worker;
* `/reset` is keyed by session and function, not job: as for sse_v3, a session runs at
  most one job per function at a time (`slot`), so it touches only the job meant;
* the server sends nothing while a function runs: a dead peer is found by websocket
  pings (every `_PING_SECONDS`), not by a read timeout.

The websocket is aiohttp's (its pool is separate from the HTTP client's); it needs
asyncio, like the rest of aiohttp here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
import anyio
import httpx
from anyio.abc import TaskGroup

from ._http.app import check_status
from ._protocol.dialects import DIALECTS
from ._protocol.limits import over_limit
from ._protocol.messages import Message, MsgKind
from ._protocol.ws import WsControl, data_body, hash_body, parse_ws, predict_answer
from ._wsfiles import fetch_url_inputs
from .errors import ConnectionFailed, JobsError, ProtocolError, QueueFull, StreamLost

if TYPE_CHECKING:
    from ._http.app import AppHttp
    from ._job import AsyncJob

__all__ = ["WsDialer", "WsSession"]

log = logging.getLogger("jobs")

#: Websocket pings while a job runs: the app answers them even when it sends nothing.
_PING_SECONDS = 20.0


class WsDialer:
    """The aiohttp session a client's websockets are opened from: made on first use (it
    belongs to the running loop), closed with the client."""

    def __init__(self, *, verify: Any = True) -> None:
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            import sniffio

            if sniffio.current_async_library() != "asyncio":
                raise ProtocolError(
                    "gradio 3.x apps are reached over a websocket, which needs asyncio: run "
                    "this client under asyncio (not trio)"
                )
            # No cap on connections (aiohttp's default is 100): each job in flight holds
            # its own websocket, and the jobs in flight are bounded by the caller.
            connector = aiohttp.TCPConnector(
                limit=0, ssl=httpx.create_ssl_context(verify=self._verify)
            )
            self._session = aiohttp.ClientSession(
                connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class WsSession:
    """One session_hash on one 3.x app. Cheap: no I/O until a job joins."""

    __slots__ = (
        "_dialer",
        "_events",
        "_locks",
        "_task_group",
        "_transport",
        "dialect",
        "exclusive",
        "hash",
    )

    def __init__(
        self,
        app_http: AppHttp,
        task_group: TaskGroup,
        dialer: WsDialer,
        session_hash: str | None = None,
        *,
        exclusive: bool = False,
    ) -> None:
        self.hash = session_hash or uuid.uuid4().hex[:16]
        self.exclusive = exclusive
        self.dialect = DIALECTS["ws"]
        self._transport = app_http
        self._task_group = task_group
        self._dialer = dialer
        self._locks: dict[int, anyio.Lock] = {}
        #: event id -> (job, the scope its socket or request runs in)
        self._events: dict[str, tuple[AsyncJob, anyio.CancelScope]] = {}

    def __repr__(self) -> str:
        return f"<WsSession {self.hash} pending={len(self._events)}>"

    @property
    def pending(self) -> int:
        return len(self._events)

    @contextlib.asynccontextmanager
    async def slot(self, fn_index: int) -> AsyncIterator[None]:
        """Hold the session's one slot for `fn_index` while a job of it is in flight."""
        if self.exclusive:
            yield
            return
        lock = self._locks.setdefault(fn_index, anyio.Lock())
        async with lock:
            yield

    async def join(
        self, job: AsyncJob, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> str:
        """Start `job` (its socket, or its direct call) in the background; returns the
        name it goes by. Its messages reach `job.deliver`; a failure, `job.fail`."""
        event_id = uuid.uuid4().hex
        scope = anyio.CancelScope()
        self._events[event_id] = (job, scope)
        self._task_group.start_soon(self._run, job, body, dict(headers or {}), event_id, scope)
        return event_id

    def close(self) -> None:
        """Nothing to release: 3.x has no heartbeat route."""

    async def cancel_event(self, fn_index: int, event_id: str) -> None:
        """Close the job's socket (the app drops a queued job, stops a generator) and reset
        the session's iterator of `fn_index`; the job ends as cancelled."""
        entry = self._events.pop(event_id, None)
        if entry is not None:
            job, scope = entry
            scope.cancel()
            job.deliver(Message(kind=MsgKind.PROCESS_COMPLETED, event_id=event_id, success=True))
        body = {"session_hash": self.hash, "fn_index": fn_index}
        with anyio.move_on_after(10, shield=True):
            try:
                await self._transport.post_json("reset", body)
            except JobsError as exc:
                log.warning("reset of session %s failed: %s", self.hash, exc)

    def spawn(self, coro: Awaitable[Any]) -> None:
        async def run() -> None:
            await coro

        self._task_group.start_soon(run)

    def drop(self, error: JobsError) -> None:
        """Close every socket of the session at once, ending its jobs with `error`."""
        events, self._events = self._events, {}
        for job, scope in events.values():
            scope.cancel()
            job.fail(error)

    async def _run(
        self,
        job: AsyncJob,
        body: dict[str, Any],
        headers: dict[str, str],
        event_id: str,
        scope: anyio.CancelScope,
    ) -> None:
        try:
            with scope:
                body = {
                    **body,
                    "data": await fetch_url_inputs(
                        self._transport, body["data"], _inline_inputs(job)
                    ),
                }
                if job.endpoint.queued:
                    await self._queued(job, body, headers, event_id)
                else:
                    await self._direct(job, body, headers, event_id)
        except JobsError as exc:
            job.fail(exc)
        except Exception as exc:  # a message we could not handle: fail this job only
            log.exception("websocket of session %s failed", self.hash)
            job.fail(ProtocolError(f"could not handle the app's answer: {exc!r}"))
        finally:
            self._events.pop(event_id, None)

    async def _queued(
        self, job: AsyncJob, body: dict[str, Any], headers: dict[str, str], event_id: str
    ) -> None:
        url = _ws_url(self._transport.url("queue/join"))
        limits = self._transport.limits
        try:
            socket = await self._dialer.session().ws_connect(
                url,
                headers={**self._transport.headers, **_cookie_header(self._transport), **headers},
                max_msg_size=limits.max_message_bytes,
                heartbeat=_PING_SECONDS,
                timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
            )
        except aiohttp.WSServerHandshakeError as exc:
            raise _refused(url, exc) from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise ConnectionFailed(f"could not open {url}: {exc}", url=url) from exc
        async with socket:
            await self._pump(socket, job, body, event_id, url)

    async def _pump(
        self,
        socket: aiohttp.ClientWebSocketResponse[Any],
        job: AsyncJob,
        body: dict[str, Any],
        event_id: str,
        url: str,
    ) -> None:
        inline = _inline_outputs(job)
        async for frame in socket:
            if frame.type is aiohttp.WSMsgType.ERROR:
                cause = frame.data if isinstance(frame.data, BaseException) else None
                raise _frame_error(cause or socket.exception(), url, self._transport.limits)
            if frame.type is not aiohttp.WSMsgType.TEXT:
                continue
            parsed = parse_ws(frame.data, event_id=event_id, inline_outputs=inline)
            if parsed is WsControl.SEND_HASH:
                await socket.send_str(hash_body(body["fn_index"], body["session_hash"]))
            elif parsed is WsControl.SEND_DATA:
                await socket.send_str(json.dumps(data_body(body)))
            elif parsed is WsControl.QUEUE_FULL:
                raise QueueFull(
                    "the app's queue is full; wait for running jobs to finish or send fewer "
                    "at once",
                    url=url,
                )
            elif isinstance(parsed, Message):
                job.deliver(parsed)
                if parsed.kind is MsgKind.PROCESS_COMPLETED:
                    return
        raise StreamLost(
            "the app closed the job's websocket before the job finished: the server "
            "stopped, restarted or dropped the connection",
            url=url,
            event_id=None,
        )

    async def _direct(
        self, job: AsyncJob, body: dict[str, Any], headers: dict[str, str], event_id: str
    ) -> None:
        url = self._transport.url("api/predict")
        content = json.dumps(data_body(body)).encode()
        job.deliver(Message(kind=MsgKind.PROCESS_STARTS, event_id=event_id))
        response, raw = await self._transport.exchange(
            "POST",
            url,
            content=content,
            headers={**headers, "content-type": "application/json"},
        )
        try:
            answer_body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            answer_body = None
        answer = predict_answer(
            response.status_code,
            answer_body,
            event_id=event_id,
            inline_outputs=_inline_outputs(job),
        )
        if answer is None:
            check_status(response, raw)
            raise ProtocolError(f"{url} answered {raw[:200]!r}, not a job's output", url=url)
        job.deliver(answer)


def _inline_inputs(job: AsyncJob) -> frozenset[int]:
    """The input positions of the job's 3.x Images (sent as base64 data URLs)."""
    endpoint = job.endpoint
    return frozenset(
        position
        for position, index in enumerate(endpoint.input_slots)
        if index is not None and endpoint.parameters[index].inline
    )


def _inline_outputs(job: AsyncJob) -> frozenset[int]:
    """The output positions of the job's 3.x Images (sent as base64 data URLs)."""
    endpoint, positions, visible_index = job.endpoint, set(), 0
    for position, visible in enumerate(endpoint.output_visible):
        if visible:
            returns = endpoint.returns
            if visible_index < len(returns) and returns[visible_index].component == "Image":
                positions.add(position)
            visible_index += 1
    return frozenset(positions)


def _ws_url(url: str) -> str:
    return "ws" + url[4:] if url.startswith("http") else url


def _cookie_header(app_http: AppHttp) -> dict[str, str]:
    # A password-protected 3.x app reads its login cookie from the websocket's request;
    # only cookies for the app's host go with it.
    host = (urlsplit(app_http.base_url).hostname or "").lower()
    cookies = "; ".join(
        f"{c.name}={c.value}"
        for c in app_http.http.cookies.jar
        if _domain_matches(host, c.domain.lower().lstrip("."))
    )
    return {"Cookie": cookies} if cookies else {}


def _domain_matches(host: str, domain: str) -> bool:
    # http.cookiejar names a host-only cookie of an IP address "x.x.x.x.local".
    return domain in ("", host, f"{host}.local") or host.endswith(f".{domain}")


def _refused(url: str, exc: aiohttp.WSServerHandshakeError) -> JobsError:
    from .errors import AuthError

    if exc.status in (401, 403):
        return AuthError(
            f"{url} refused the websocket ({exc.status}): the app needs a login; pass "
            "auth=(user, password)",
            url=url,
        )
    return ConnectionFailed(f"{url} refused the websocket (HTTP {exc.status})", url=url)


def _frame_error(exc: BaseException | None, url: str, limits: Any) -> JobsError:
    if isinstance(exc, aiohttp.WebSocketError) and exc.code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG:
        return over_limit(
            "a message of the app's websocket",
            limit="max_message_bytes",
            value=limits.max_message_bytes,
            url=url,
        )
    return StreamLost(f"lost the job's websocket: {exc}", url=url)
