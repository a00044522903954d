"""A TCP proxy that adds a round-trip time and counts connections, for benchmarks.

    with LatencyProxies([7861, 7862], rtt=0.1) as proxies:
        proxies.ports         # where clients connect, one per upstream port
        proxies.connections   # TCP connections accepted so far, over all of them

Bytes pass through untouched (TLS too, so handshakes pay the round trips), each
direction delayed by `rtt / 2`, in order: a chunk read at time t is written at
t + rtt / 2, so the link has the latency of a distant server and no bandwidth limit.
All listeners share one event loop in a daemon thread of the calling process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType

__all__ = ["LatencyProxies"]

_CHUNK = 65536


class LatencyProxies:
    def __init__(self, upstream_ports: list[int], *, rtt: float) -> None:
        self.upstream_ports = list(upstream_ports)
        self.rtt = rtt
        self.ports: list[int] = []
        self._connections = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._servers: list[asyncio.Server] = []

    @property
    def connections(self) -> int:
        with self._lock:
            return self._connections

    def reset(self) -> None:
        with self._lock:
            self._connections = 0

    def __enter__(self) -> LatencyProxies:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _listen(self) -> None:
        for upstream in self.upstream_ports:

            async def serve(
                reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int = upstream
            ) -> None:
                # Cancelled only when the proxies close: the connection just ends.
                with contextlib.suppress(asyncio.CancelledError):
                    await self._serve(reader, writer, port)

            server = await asyncio.start_server(serve, "127.0.0.1", 0)
            self._servers.append(server)
            self.ports.append(server.sockets[0].getsockname()[1])

    async def _close(self) -> None:
        for server in self._servers:
            server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int
    ) -> None:
        with self._lock:
            self._connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction, each chunk delivered rtt/2 after it was read."""
        delay = self.rtt / 2
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    with contextlib.suppress(OSError):
                        writer.write_eof()  # a half-close travels with the same delay
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            while True:
                try:
                    data = await reader.read(_CHUNK)
                except OSError:
                    data = b""
                queue.put_nowait((loop.time() + delay, data))
                if not data:
                    break
            await sender
        finally:
            sender.cancel()
