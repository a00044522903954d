"""`AsyncJob`: one submitted call — its status, outputs, result and cancellation."""

from __future__ import annotations

import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from ._protocol.messages import Message, MsgKind, apply_diff
from ._protocol.status import Status, StatusUpdate
from ._protocol.zerogpu import zerogpu_error
from .errors import AppError, JobCancelled, JobsError, JobTimeout, ProtocolError

if TYPE_CHECKING:
    from ._jobsession import JobSession
    from ._protocol.schema import Endpoint

__all__ = ["AsyncJob", "JobTimings"]

log = logging.getLogger("jobs")

#: Turns a completed output list (State slots already dropped) into the value users see,
#: downloading files on the way.
Postprocess = Callable[[list[Any]], Awaitable[list[Any]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobTimings:
    """Monotonic seconds: when the job was submitted, joined the app's queue, started
    running on the app, and finished (None until it happened)."""

    submitted: float
    joined: float | None
    started: float | None
    finished: float | None
    #: What the app reported it spent running the job (None when it does not say).
    app_duration: float | None = None

    @property
    def run_time(self) -> float | None:
        """Seconds the job ran: the app's own figure when it gives one (messages can reach
        us late, all at once), else from its start message to its end."""
        if self.app_duration is not None:
            return self.app_duration
        if self.started is None:
            return None
        return (self.finished or time.monotonic()) - self.started

    @property
    def queue_time(self) -> float | None:
        """Seconds from joining the app's queue until it started running the job."""
        if self.joined is None:
            return None
        end = self.finished or time.monotonic()
        if self.app_duration is not None:
            return max(0.0, end - self.joined - self.app_duration)
        return (self.started or end) - self.joined


class AsyncJob:
    """A call submitted to an app. Created by `AsyncClient.submit`; runs in the background.

    `await job.result()` gives the value (a tuple when the endpoint has several outputs).
    For a generator endpoint it is the *final* value; `outputs()` holds every value
    produced so far and `async for value in job` yields each one as it arrives.
    """

    def __init__(
        self,
        *,
        endpoint: Endpoint,
        session: JobSession,
        postprocess: Postprocess,
        callbacks: Sequence[Callable[..., Any]] = (),
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self.endpoint = endpoint
        self._limiter = limiter
        self._done_listeners: list[Callable[[AsyncJob], None]] = []
        self.session = session
        self.event_id: str | None = None
        self._postprocess = postprocess
        self._callbacks = tuple(callbacks)
        self._status_listeners: list[Callable[[StatusUpdate], None]] = []
        self._status = StatusUpdate(code=Status.STARTING)
        self._outputs: list[Any] = []
        self._raw: list[Any] | None = None
        self._inbox: list[Message] = []
        self._inbox_ready = anyio.Event()
        #: Made when someone waits for outputs; most jobs are only awaited for a result.
        self._changed: anyio.Event | None = None
        self._finished = anyio.Event()
        self._value: Any = None
        self._error: JobsError | None = None
        self._stream_error: JobsError | None = None
        self._joining = False
        self._cancel_requested = False
        self._wait_scope: anyio.CancelScope | None = None
        self._submitted = time.monotonic()
        self._joined: float | None = None
        self._started: float | None = None
        self._done_at: float | None = None
        self._app_duration: float | None = None

    def __repr__(self) -> str:
        return (
            f"<AsyncJob {self.endpoint.display_name} {self._status.code.value} "
            f"event_id={self.event_id}>"
        )

    # -- what users call -------------------------------------------------------------

    def status(self) -> StatusUpdate:
        """The latest status (queue rank and size, eta, progress, success)."""
        return self._status

    def done(self) -> bool:
        """True once the job finished, failed or was cancelled."""
        return self._finished.is_set()

    def outputs(self) -> list[Any]:
        """Every output produced so far, in order (for a plain endpoint, its one result)."""
        return list(self._outputs)

    @property
    def timings(self) -> JobTimings:
        return JobTimings(
            submitted=self._submitted,
            joined=self._joined,
            started=self._started,
            finished=self._done_at,
            app_duration=self._app_duration,
        )

    @property
    def error(self) -> JobsError | None:
        """The failure, once the job is done and failed (None otherwise)."""
        return self._error

    def add_done_listener(self, listener: Callable[[AsyncJob], None]) -> None:
        """Call `listener(job)` once the job is done (at once if it already is), on the
        event loop; before the result callbacks."""
        if self.done():
            listener(self)
        else:
            self._done_listeners.append(listener)

    def add_status_listener(self, listener: Callable[[StatusUpdate], None]) -> None:
        """Call `listener(update)` on every status change (queue rank, progress, ...)."""
        self._status_listeners.append(listener)

    async def result(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 - gradio_client API
        """Wait for the job and return its value, or raise its error.

        Raises `JobTimeout` if `timeout` seconds pass first (the job goes on),
        `JobCancelled` if it was cancelled, `AppError` if the app failed it.
        """
        if timeout is None:
            await self._finished.wait()
        else:
            with anyio.move_on_after(timeout):
                await self._finished.wait()
            if not self._finished.is_set():
                raise JobTimeout(
                    f"{self.endpoint.display_name} did not finish within {timeout:g} s "
                    f"(status {self._status.code.value}); it keeps running — cancel() stops it"
                )
        if self._error is not None:
            raise self._error
        return self._value

    def result_now(self) -> Any:
        """The value of a job that is done; raises its error, or RuntimeError if not done."""
        if not self.done():
            raise RuntimeError(f"{self.endpoint.display_name} is not done yet")
        if self._error is not None:
            raise self._error
        return self._value

    async def cancel(self, *, force: bool = False) -> bool:
        """Cancel the job. True if it will not produce a result.

        A job still waiting (on this client, or in the app's queue) is removed; a running
        generator stops after its current step. A running plain function is left alone
        and this returns False, unless `force=True`, which asks the app to drop it (its
        concurrency slot is freed at once; Python code already running may finish)."""
        if self.done():
            return False
        if self.event_id is None:
            self._cancel_requested = True
            if self._wait_scope is not None:
                self._wait_scope.cancel()
            self._mark_cancelled()
            return True
        running = self._started is not None
        if running and not (self.endpoint.generator or force):
            return False
        self._cancel_requested = True
        self._mark_cancelled()
        await self._cancel_on_server(self.event_id)
        return True

    def _mark_cancelled(self) -> None:
        # As gradio_client: status() says CANCELLED from the moment cancel() succeeds,
        # though a running generator still ends its current step before the job is done.
        self._set_status(StatusUpdate(code=Status.CANCELLED, success=False))

    async def _cancel_on_server(self, event_id: str) -> None:
        if self._started is None and self.session.exclusive:
            # Leaving the session removes its queued event on every gradio version
            # (before 6.0, `/cancel` alone leaves it in the queue to run later).
            self.session.drop(JobCancelled(f"{self.endpoint.display_name} was cancelled"))
        await self.session.cancel_event(self.endpoint.fn_index, event_id)

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Any]:
        # As gradio_client's: a job that fails ends the loop; `result()` raises its error.
        index = 0
        while True:
            more, value = await self.wait_output(index)
            if not more:
                return
            yield value
            index += 1

    async def wait_output(self, index: int) -> tuple[bool, Any]:
        """Wait until output `index` exists (True, value) or the job is done (False, None)."""
        while index >= len(self._outputs) and not self.done():
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
        if index < len(self._outputs):
            return True, self._outputs[index]
        return False, None

    # -- driven by the client and the session ------------------------------------------

    async def run(self, join: Callable[[], Awaitable[str]]) -> None:
        """The job's life: wait for its session slot, join the queue, consume messages."""
        try:
            if self._limiter is None and self.session.exclusive:
                # The session's only job, no max_workers: nothing to wait for (its slot
                # is free), so no wait to cancel.
                self._joining = True
                await self._join_and_consume(join)
                return
            async with contextlib.AsyncExitStack() as stack:
                with anyio.CancelScope() as scope:
                    # cancel() before the job is sent ends it here, without a request.
                    self._wait_scope = scope
                    if self._cancel_requested:
                        scope.cancel()
                    if self._limiter is not None:  # the client's max_workers
                        await stack.enter_async_context(self._limiter)
                    await stack.enter_async_context(self.session.slot(self.endpoint.fn_index))
                    self._joining = True
                self._wait_scope = None
                if not self._joining:
                    self._finish(
                        error=JobCancelled(
                            f"{self.endpoint.display_name} was cancelled before it was sent"
                        )
                    )
                    return
                await self._join_and_consume(join)
        except JobsError as exc:
            self._finish(error=exc)
        except anyio.get_cancelled_exc_class():
            self._finish(error=JobCancelled(f"{self.endpoint.display_name} was cancelled"))
            raise
        except Exception as exc:  # a bug of ours: the job must still end, with the cause
            log.exception("job %s failed unexpectedly", self.event_id)
            self._finish(error=ProtocolError(f"internal error while running the job: {exc!r}"))
        finally:
            if not self.done():
                self._finish(error=JobCancelled(f"{self.endpoint.display_name} was cancelled"))

    async def _join_and_consume(self, join: Callable[[], Awaitable[str]]) -> None:
        self._set_status(StatusUpdate(code=Status.JOINING_QUEUE))
        self.event_id = await join()
        self._joined = time.monotonic()
        self._joining = False
        if self._status.code is Status.JOINING_QUEUE:
            self._set_status(StatusUpdate(code=Status.IN_QUEUE))
        if self._cancel_requested:
            await self._cancel_on_server(self.event_id)
        await self._consume()

    async def _consume(self) -> None:
        while True:
            await self._inbox_ready.wait()
            batch, self._inbox = self._inbox, []
            self._inbox_ready = anyio.Event()
            for message in batch:
                if await self._handle_output(message):
                    return

    def deliver(self, message: Message) -> None:
        """Called by the session's stream reader for every message of this job."""
        kind = message.kind
        if kind is MsgKind.ESTIMATION:
            self._set_status(
                StatusUpdate(
                    code=Status.IN_QUEUE,
                    rank=message.rank,
                    queue_size=message.queue_size,
                    eta=message.eta,
                )
            )
        elif kind is MsgKind.PROCESS_STARTS:
            self._started = time.monotonic()
            self._set_status(StatusUpdate(code=Status.PROCESSING, eta=message.eta))
        elif kind is MsgKind.PROGRESS:
            self._set_status(StatusUpdate(code=Status.PROGRESS, progress_data=message.progress))
        elif kind is MsgKind.LOG:
            self._set_status(
                StatusUpdate(
                    code=Status.LOG,
                    log=(message.level or "info", message.text or ""),
                    log_title=message.title,
                )
            )
        elif kind in (
            MsgKind.PROCESS_GENERATING,
            MsgKind.PROCESS_STREAMING,
            MsgKind.PROCESS_COMPLETED,
            MsgKind.UNEXPECTED_ERROR,
        ):
            self._inbox.append(message)
            self._inbox_ready.set()

    def fail(self, error: JobsError) -> None:
        """Called by the session when the stream is lost before this job completed."""
        self._inbox.append(
            Message(kind=MsgKind.UNEXPECTED_ERROR, event_id=self.event_id, text=str(error))
        )
        self._stream_error = error
        self._inbox_ready.set()

    async def _handle_output(self, message: Message) -> bool:
        kind = message.kind
        if kind is MsgKind.UNEXPECTED_ERROR:
            self._finish(
                error=self._stream_error
                or ProtocolError(f"the app reported an unexpected error: {message.text}")
            )
            return True
        if kind is not MsgKind.PROCESS_COMPLETED:
            data = message.data or []
            if self._raw is None or not self.session.dialect.diffs:
                self._raw = list(data)
            else:
                self._raw = [
                    apply_diff(old, ops) for old, ops in zip(self._raw, data, strict=False)
                ]
            value = _shape(await self._postprocess(self.endpoint.visible_outputs(self._raw)))
            self._outputs.append(value)
            self._set_status(StatusUpdate(code=Status.ITERATING))
            return False
        self._app_duration = message.duration
        if not message.success:
            self._finish(error=self._app_error(message))
        elif message.data is None:
            self._finish(error=JobCancelled(f"{self.endpoint.display_name} was cancelled"))
        else:
            value = _shape(await self._postprocess(self.endpoint.visible_outputs(message.data)))
            if not self.endpoint.generator or not self._outputs or self._outputs[-1] != value:
                self._outputs.append(value)
            self._finish(value=value)
        return True

    def _app_error(self, message: Message) -> AppError:
        where = self.endpoint.display_name
        gpu = zerogpu_error(message.text, message.title, where=where, event_id=self.event_id)
        if gpu is not None:
            return gpu
        if message.text is None:
            return AppError(
                f"{where} raised an error in the app, which does not show error details "
                "(launch it with show_error=True to see them)",
                title=message.title,
                event_id=self.event_id,
            )
        title = f" [{message.title}]" if message.title and message.title != "Error" else ""
        return AppError(
            f"{where} failed in the app{title}: {message.text}",
            app_message=message.text,
            title=message.title,
            event_id=self.event_id,
        )

    def _set_status(self, update: StatusUpdate) -> None:
        if not self._status.code.is_final:
            self._status = update
            self._notify()
            for listener in self._status_listeners:
                try:
                    listener(update)
                except Exception:  # a listener's bug must not break the stream
                    log.exception("status listener %r raised", listener)

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    def _finish(self, *, value: Any = None, error: JobsError | None = None) -> None:
        if self._finished.is_set():
            return
        self._done_at = time.monotonic()
        self._value = value
        self._error = error
        code = Status.CANCELLED if isinstance(error, JobCancelled) else Status.FINISHED
        self._status = StatusUpdate(code=code, success=error is None)
        self._finished.set()
        self._notify()
        for listener in self._status_listeners:
            try:
                listener(self._status)
            except Exception:
                log.exception("status listener %r raised", listener)
        for done_listener in self._done_listeners:
            try:
                done_listener(self)
            except Exception:
                log.exception("done listener %r raised", done_listener)
        if error is None:
            for callback in self._callbacks:
                self._call_back(callback, value)

    def _call_back(self, callback: Callable[..., Any], value: Any) -> None:
        try:
            outcome = callback(*value) if isinstance(value, tuple) else callback(value)
            if inspect.isawaitable(outcome):
                self.session.spawn(_await(outcome))
        except Exception:
            log.exception("result callback %r raised", callback)


async def _await(awaitable: Awaitable[Any]) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("async result callback raised")


def _shape(values: list[Any]) -> Any:
    return values[0] if len(values) == 1 else tuple(values)
