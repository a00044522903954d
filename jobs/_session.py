"""A Gradio session: one `session_hash`, its event stream, and the jobs routed through it.

The server keys State, cancellation and the event stream by session. Cancelling an event
kills every *running* event of the same function in that session, and a dropped stream
drops all of the session's work (see the protocol reference, §3.2 and §4). So:

* a session runs at most one event per function at a time (`slot`); later jobs of the
  same function wait on the client, where cancelling them needs no request. With that,
  `/cancel` only ever touches the job it was meant for;
* exactly one reader holds the session's stream, opened after the first join and kept
  open while any job of the session is pending; it demultiplexes messages by event id.

A client gives each stateless job a session of its own, so jobs never share a stream.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from anyio.abc import TaskGroup

from ._http.bodies import iter_decoded
from ._own_stream import OwnStream
from ._protocol.dialects import DIALECTS, Dialect
from ._protocol.messages import Message, MsgKind, parse_message
from ._protocol.sse import SSEDecoder
from .errors import ConnectionFailed, JobCancelled, JobsError, ProtocolError, StreamLost

if TYPE_CHECKING:
    from ._http.app import AppHttp
    from ._job import AsyncJob

__all__ = ["Session", "new_session_hash"]

log = logging.getLogger("jobs")

#: Messages kept for events whose join answer is still on its way.
_MAX_EARLY = 1000

#: How long to wait for the end of a stream after its last result (the server sends
#: `close_stream` and ends the body at once; a proxy that does not is not waited for).
_DRAIN_SECONDS = 2.0


def new_session_hash() -> str:
    return uuid.uuid4().hex[:16]


class Session:
    """One session_hash on one app. Cheap: no I/O until a job joins."""

    __slots__ = (
        "_app_http",
        "_early",
        "_heartbeat",
        "_heartbeat_started",
        "_held",
        "_joining",
        "_locks",
        "_own",
        "_pending",
        "_reader_running",
        "_reader_scope",
        "_task_group",
        "dialect",
        "exclusive",
        "hash",
    )

    def __init__(
        self,
        app_http: AppHttp,
        task_group: TaskGroup,
        session_hash: str | None = None,
        *,
        heartbeat: bool = False,
        exclusive: bool = False,
        dialect: Dialect = DIALECTS["sse_v3"],
    ) -> None:
        self.hash = session_hash or new_session_hash()
        #: The app's queue protocol (how jobs join, end, and are cancelled).
        self.dialect = dialect
        #: The session belongs to one job, so dropping its stream touches nothing else.
        self.exclusive = exclusive
        self._reader_scope: anyio.CancelScope | None = None
        # Apps with State ask clients to hold a heartbeat open (config `connect_heartbeat`):
        # when it drops, the server runs unload handlers and later forgets the State.
        self._heartbeat: anyio.CancelScope | None = anyio.CancelScope() if heartbeat else None
        self._heartbeat_started = False
        self._app_http = app_http
        self._task_group = task_group
        self._pending: dict[str, AsyncJob] = {}
        # Messages that arrive for an event before its join response was read.
        self._early: dict[str, list[Message]] = {}
        # Last results, delivered once their stream is read to its end (see _route).
        self._held: list[tuple[AsyncJob, Message]] = []
        self._joining = 0
        self._locks: dict[int, anyio.Lock] = {}
        self._reader_running = False
        #: Jobs on their own streams (protocol `sse`), by their local id.
        self._own: dict[str, OwnStream] = {}

    def __repr__(self) -> str:
        return (
            f"<Session {self.hash} pending={len(self._pending)} "
            f"reader={'open' if self._reader_running else 'closed'}>"
        )

    @property
    def pending(self) -> int:
        return len(self._pending) + self._joining

    @contextlib.asynccontextmanager
    async def slot(self, fn_index: int) -> AsyncIterator[None]:
        """Hold the session's one slot for `fn_index` while a job of it is in flight."""
        if self.exclusive:  # the session's only job: nothing to wait for, no lock to take
            yield
            return
        lock = self._locks.get(fn_index)
        if lock is None:
            lock = self._locks[fn_index] = anyio.Lock()
        async with lock:
            yield

    async def join(
        self, job: AsyncJob, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> str:
        """Send `queue/join` for `job` and route its messages to it. Returns the event id."""
        if self.dialect.stream_per_job:
            return self._join_own_stream(job, body)
        self._joining += 1
        try:
            reply = await self._app_http.post_json("queue/join", body, headers=headers)
        finally:
            self._joining -= 1
        event_id = reply.get("event_id") if isinstance(reply, dict) else None
        if not isinstance(event_id, str):
            raise ProtocolError(
                f"queue/join answered without an event_id: {reply!r}",
                url=self._app_http.url("queue/join"),
            )
        self._pending[event_id] = job
        for message in self._early.pop(event_id, ()):
            self._route(message)
        self._ensure_reader()
        self._ensure_heartbeat()
        return event_id

    def _join_own_stream(self, job: AsyncJob, body: dict[str, Any]) -> str:
        own = OwnStream(self._app_http, job, body)
        self._own[own.local_id] = own

        async def run() -> None:
            try:
                await own.run()
            finally:
                self._own.pop(own.local_id, None)

        self._task_group.start_soon(run)
        return own.local_id

    def close(self) -> None:
        """Stop holding the heartbeat (the app may then forget this session's State)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()

    def _ensure_heartbeat(self) -> None:
        if self._heartbeat is not None and not self._heartbeat_started:
            self._heartbeat_started = True
            self._task_group.start_soon(self._hold_heartbeat, self._heartbeat)

    async def _hold_heartbeat(self, scope: anyio.CancelScope) -> None:
        delay = 1.0
        with scope:
            while True:
                try:
                    async with self._app_http.stream("GET", f"heartbeat/{self.hash}") as reply:
                        async for _ in reply.aiter_raw():
                            delay = 1.0
                except JobsError as exc:
                    log.debug("heartbeat of session %s dropped: %s", self.hash, exc)
                await anyio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def cancel_event(self, fn_index: int, event_id: str) -> None:
        """Ask the app to drop `event_id` (a queued one is removed, a running one stopped)."""
        own = self._own.get(event_id)
        if own is not None:
            # Protocol `sse`: a running event (named by the server) is reset; leaving its
            # stream removes a queued one.
            if own.server_id is not None:
                await self._post_cancel("reset", {"event_id": own.server_id})
            own.job.fail(JobCancelled(f"{own.job.endpoint.display_name} was cancelled"))
            own.close()
            return
        if self.dialect.cancel_route == "cancel":
            body = {"session_hash": self.hash, "fn_index": fn_index, "event_id": event_id}
            await self._post_cancel("cancel", body)
            return
        answer = await self._post_cancel("reset", {"event_id": event_id})
        if isinstance(answer, dict) and answer.get("success"):
            # A reset event gets no further message (not even its completion): stop
            # waiting for it, and let go of a stream that now carries nothing of ours.
            self._forget(event_id)

    async def _post_cancel(self, route: str, body: dict[str, Any]) -> Any:
        with anyio.move_on_after(10, shield=True):
            try:
                return await self._app_http.post_json(route, body)
            except JobsError as exc:
                # Nothing more can be done: the job ends when the stream says so, or fails
                # with it.
                log.warning("cancel of event %s failed: %s", body["event_id"], exc)
        return None

    def _forget(self, event_id: str) -> None:
        job = self._pending.pop(event_id, None)
        if job is not None:
            job.fail(JobCancelled(f"{job.endpoint.display_name} was cancelled"))
        if not self._pending and not self._joining and self._reader_scope is not None:
            self._reader_scope.cancel()

    def spawn(self, coro: Awaitable[Any]) -> None:
        async def run() -> None:
            await coro

        self._task_group.start_soon(run)

    def _ensure_reader(self) -> None:
        if not self._reader_running:
            self._reader_running = True
            self._task_group.start_soon(self._read_stream)

    def drop(self, error: JobsError) -> None:
        """Close the stream at once, ending every pending job of the session with `error`.

        The server, seeing the client go, removes the session's queued events: on gradio
        before 6.0, `/cancel` alone leaves a queued event to run later, so this is how an
        exclusive session's queued job is really cancelled."""
        if self._reader_scope is not None:
            self._reader_scope.cancel()
        for own in list(self._own.values()):
            own.job.fail(error)
            own.close()
        self._fail_pending(error)

    async def _read_stream(self) -> None:
        try:
            with anyio.CancelScope() as scope:
                self._reader_scope = scope
                while self._pending or self._joining:
                    closed = await self._read_once()
                    if not closed and self._pending:
                        self._fail_pending(
                            StreamLost(
                                "the app's event stream ended before the job finished: the "
                                "server stopped, restarted or dropped the connection",
                                url=self._app_http.base_url,
                            )
                        )
        except JobsError as exc:
            self._fail_pending(exc)
        except Exception as exc:  # a message we could not handle: fail our jobs, not others
            log.exception("event stream of session %s failed", self.hash)
            self._fail_pending(
                ProtocolError(
                    f"could not handle the app's event stream: {exc!r}",
                    url=self._app_http.base_url,
                )
            )
        finally:
            self._deliver_held()
            self._reader_scope = None
            self._reader_running = False
        if self._pending or self._joining:
            # A join landed while the reader was finishing: it needs a stream too.
            self._ensure_reader()

    async def _read_once(self, *, fresh: bool = False) -> bool:
        """Read one connection of the stream. True if the server closed it cleanly."""
        decoder = SSEDecoder(
            max_bytes=self._app_http.limits.max_message_bytes,
            url=self._app_http.url("queue/data"),
        )
        opened = False
        try:
            with anyio.CancelScope() as tail:
                async with self._app_http.stream(
                    "GET", "queue/data", params={"session_hash": self.hash}
                ) as response:
                    opened = True
                    chunks = iter_decoded(response)
                    async for chunk in chunks:
                        for event in decoder.feed(chunk):
                            if self._handle(parse_message(event.data)):
                                tail.deadline = min(tail.deadline, _drain_deadline())
                                await _drain(chunks)
                                return True
                            if self._held:
                                tail.deadline = min(tail.deadline, _drain_deadline())
        except ConnectionFailed as exc:
            if isinstance(exc, StreamLost):
                raise
            if not opened and not fresh and _stale(exc):
                # A pooled connection the server closed while idle: the request never
                # reached the app, so it is sent once more (on a new connection).
                return await self._read_once(fresh=True)
            raise StreamLost(
                f"lost the app's event stream mid-job: {exc.message}",
                url=self._app_http.base_url,
            ) from exc
        # A stream that overran its tail deadline had delivered every result already.
        # Before sse_v3 the server ends the stream, without a word, once nothing of the
        # session is pending: a job joined just then is read on a new stream.
        return tail.cancelled_caught or not self.dialect.says_close

    def _handle(self, message: Message) -> bool:
        """Route one message; True once the server says the stream ends."""
        if message.kind is MsgKind.CLOSE_STREAM:
            return True
        if message.kind is MsgKind.UNEXPECTED_ERROR:
            self._fail_pending(_unexpected(message, self._app_http.base_url))
            return True
        self._route(message)
        return False

    def _route(self, message: Message) -> None:
        event_id = message.event_id
        if event_id is None:
            return  # heartbeats and session-wide notices
        job = self._pending.get(event_id)
        if job is None:
            # Kept only while a join is in flight, and only so many: a server sending
            # messages for events nobody joined must not fill the memory.
            if self._joining and sum(map(len, self._early.values())) < _MAX_EARLY:
                self._early.setdefault(event_id, []).append(message)
            return
        if message.kind is MsgKind.PROCESS_COMPLETED:
            del self._pending[event_id]
            if not self._pending and not self._joining:
                # The server ends the stream right after its last result. Holding that
                # result until the stream is read to its end puts the connection back
                # in the pool before the caller sends its next job, which then reuses
                # it instead of opening a new one (a TCP and TLS handshake per job).
                self._held.append((job, message))
                return
        job.deliver(message)

    def _deliver_held(self) -> None:
        held, self._held = self._held, []
        for job, message in held:
            job.deliver(message)

    def _fail_pending(self, error: JobsError) -> None:
        self._deliver_held()  # those results arrived before the failure
        pending, self._pending = self._pending, {}
        for job in pending.values():
            job.fail(error)


def _stale(exc: ConnectionFailed) -> bool:
    return isinstance(exc.__cause__, httpx.RemoteProtocolError | httpx.ReadError)


def _drain_deadline() -> float:
    return anyio.current_time() + _DRAIN_SECONDS


async def _drain(chunks: AsyncIterator[bytes]) -> None:
    """Read a stream that said `close_stream` to its end (the server ends the body right
    after it). A response read to its end hands its connection back to the pool; one
    left unread is closed, and the next stream pays a new TCP (and TLS) handshake."""
    try:
        async for _ in chunks:
            pass
    except httpx.TransportError as exc:
        # Every result is already in: only this connection is lost.
        log.debug("event stream ended badly after close_stream: %s", exc)


def _unexpected(message: Message, url: str) -> JobsError:
    if message.session_not_found:
        return StreamLost(
            "the app no longer knows this session (it restarted, or evicted the session); "
            "the job's outcome is unknown — submit it again",
            url=url,
        )
    if message.text == "Server stopped unexpectedly.":
        return StreamLost("the app stopped while the job was pending", url=url)
    return ProtocolError(f"the app reported an unexpected error: {message.text}", url=url)
