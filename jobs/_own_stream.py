"""A job on a gradio 4.0-4.8 app (protocol `sse`): its own event stream, opened by the join.

`GET queue/join?fn_index&session_hash` queues the event and streams its messages, none
tagged with an event id. When the event reaches a worker the server sends `send_data
{event_id}` and waits (5 s) for `POST queue/data {event_id, data, fn_index,
session_hash}`; the stream ends after `process_completed`. Closing the stream removes a
queued event (the server cleans events whose client left), and `POST reset {event_id}`
ends a running generator after its current step.

The job is known by a local id until the server names its event (only when it starts).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._http.bodies import iter_decoded
from ._protocol.messages import MsgKind, parse_message
from ._protocol.sse import SSEDecoder
from .errors import JobsError, QueueFull, StreamLost

if TYPE_CHECKING:
    from ._http.app import AppHttp
    from ._job import AsyncJob

__all__ = ["OwnStream"]


class OwnStream:
    """One job's stream: `start()` it in a task group, `close()` to leave the queue."""

    __slots__ = ("app_http", "body", "job", "local_id", "scope", "server_id")

    def __init__(self, app_http: AppHttp, job: AsyncJob, body: Mapping[str, Any]) -> None:
        self.app_http = app_http
        self.job = job
        self.body = dict(body)
        self.local_id = f"sse-{uuid.uuid4().hex}"
        #: The event id the server gave (with `send_data`); None while the job is queued.
        self.server_id: str | None = None
        self.scope = anyio.CancelScope()

    def close(self) -> None:
        self.scope.cancel()

    async def run(self) -> None:
        """Read the stream to the job's end; any failure ends the job with it."""
        url = self.app_http.url("queue/join")
        try:
            with self.scope:
                if await self._read(url):
                    return
                self.job.fail(
                    StreamLost(
                        "the app's event stream ended before the job finished: the server "
                        "stopped, restarted or dropped the connection",
                        url=self.app_http.base_url,
                    )
                )
        except JobsError as exc:
            self.job.fail(exc)

    async def _read(self, url: str) -> bool:
        """True once the job completed."""
        decoder = SSEDecoder(max_bytes=self.app_http.limits.max_message_bytes, url=url)
        params = {"fn_index": str(self.body["fn_index"]), "session_hash": self.body["session_hash"]}
        async with self.app_http.stream("GET", "queue/join", params=params) as response:
            async for chunk in iter_decoded(response):
                for event in decoder.feed(chunk):
                    message = parse_message(event.data)
                    if message.raw_kind == "send_data":
                        self.server_id = message.event_id
                        await self.app_http.post_json(
                            "queue/data", {**self.body, "event_id": self.server_id}
                        )
                        continue
                    if message.raw_kind == "queue_full":
                        raise QueueFull("the app's queue is full", url=url, status_code=503)
                    if message.kind is MsgKind.UNEXPECTED_ERROR:
                        raise StreamLost(
                            f"the app reported an unexpected error: {message.text}", url=url
                        )
                    self.job.deliver(dataclasses.replace(message, event_id=self.local_id))
                    if message.kind is MsgKind.PROCESS_COMPLETED:
                        return True
        return False
