"""What a job needs of the session it runs in, whatever the wire: `_session.Session`
(one event stream per session, sse_v3) and `_wssession.WsSession` (a websocket per job,
gradio 3.x) both provide it."""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ._job import AsyncJob
    from ._protocol.dialects import Dialect
    from .errors import JobsError

__all__ = ["JobSession"]


class JobSession(Protocol):
    """One session_hash on one app, and the jobs sent through it."""

    #: The session's id on the app (it keys State and cancellation there).
    hash: str
    #: The session belongs to one job: cancelling or dropping it touches nothing else.
    exclusive: bool
    #: The app's queue protocol (whether generator outputs come as diffs, ...).
    dialect: Dialect

    @property
    def pending(self) -> int:
        """Jobs sent and not finished."""
        ...

    def slot(self, fn_index: int) -> AbstractAsyncContextManager[None]:
        """Held while a job of `fn_index` is in flight (one per function at a time)."""
        ...

    async def join(
        self, job: AsyncJob, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> str:
        """Send `job` (`body` as for `queue/join`); returns its event id. Its messages
        then reach `job.deliver`, a lost connection `job.fail`."""
        ...

    async def cancel_event(self, fn_index: int, event_id: str) -> None:
        """Ask the app to drop the event (queued: removed; running: stopped if it can)."""
        ...

    def drop(self, error: JobsError) -> None:
        """Close the session's connections, ending its pending jobs with `error`."""
        ...

    def close(self) -> None:
        """Stop what the session holds open for the app (its heartbeat)."""
        ...

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run `coro` in the client's background task group."""
        ...
