"""A task group that lives in a task of its own, so clients can be opened and closed in
any order.

A task group entered directly in the caller's task nests its cancel scope there: two
clients opened one after the other would then have to be closed in reverse order. On
asyncio the group is hosted by a dedicated task instead; elsewhere (trio) it falls back
to the caller's task, where `async with` keeps the order right.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

import anyio
import sniffio
from anyio.abc import TaskGroup

__all__ = ["BackgroundTaskGroup"]


class BackgroundTaskGroup:
    def __init__(self) -> None:
        self._group: TaskGroup | None = None
        self._host: asyncio.Task[None] | None = None
        self._inline: TaskGroup | None = None

    async def __aenter__(self) -> TaskGroup:
        if sniffio.current_async_library() != "asyncio":
            self._inline = anyio.create_task_group()
            return await self._inline.__aenter__()
        ready = anyio.Event()

        async def host() -> None:
            async with anyio.create_task_group() as group:
                self._group = group
                ready.set()
                await anyio.sleep_forever()

        self._host = asyncio.get_running_loop().create_task(host())
        await ready.wait()
        assert self._group is not None
        return self._group

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._inline is not None:
            self._inline.cancel_scope.cancel()
            await self._inline.__aexit__(exc_type, exc, tb)
            return
        if self._group is not None:
            self._group.cancel_scope.cancel()
        if self._host is not None:
            with anyio.CancelScope(shield=True):
                with contextlib.suppress(asyncio.CancelledError):
                    await self._host
