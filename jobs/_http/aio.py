"""The HTTP engine under httpx: an `httpx.AsyncBaseTransport` on aiohttp.

httpx stays the interface (requests, responses, redirects, auth, cookies, proxies);
only the connection pool and the HTTP/1.1 parser below it change. httpcore's pool
rescans every connection (and polls each idle socket) on every request and response,
and h11 parses in Python: with a warm pool of one connection per job in flight, that
was over half the client's CPU per job (`bench/bench_runner.py --profile`). aiohttp's
pool is keyed by host and its parser is C (llhttp).

Written here rather than taken from httpx-aiohttp (the same bridge, by an httpx
maintainer) because `jobs` names what went wrong from the httpx error type
(`app.translate_errors`, the stale-connection retry) and httpx-aiohttp maps a
refused connection to `ConnectTimeout`, leaves a malformed answer head as a raw aiohttp
error, and hands httpx's `Headers` to aiohttp, which reads them back one lookup at a
time (a third of its CPU per request). `_httpx_error` maps every aiohttp error to the
one httpcore raises for the same event.

The session has no cookie jar (httpx already keeps the client's cookies and decides
where they go), no cap on connections (the jobs in flight bound them), no proxy
settings from the environment behind httpx's back (httpx routes proxied URLs to its
own transport), and never inflates bodies (`bodies` does, under a byte budget).

aiohttp needs asyncio: under another event loop (trio) httpx's own transport is used.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import httpx
import sniffio
from yarl import URL

__all__ = ["aiohttp_transport"]

#: Idle connections are closed before uvicorn's 5 s keep-alive timeout closes them.
_KEEPALIVE_SECONDS = 4.0
#: The most read from the socket buffer at once (aiohttp pauses reading beyond 128 KiB).
_CHUNK = 1 << 16


def aiohttp_transport(*, verify: Any = True, cert: Any = None) -> httpx.AsyncBaseTransport | None:
    """A transport for an `httpx.AsyncClient`, or None where aiohttp cannot run."""
    try:
        if sniffio.current_async_library() != "asyncio":
            return None
    except sniffio.AsyncLibraryNotFoundError:
        return None
    return _AiohttpTransport(httpx.create_ssl_context(verify=verify, cert=cert))


class _AiohttpTransport(httpx.AsyncBaseTransport):
    def __init__(self, ssl: Any) -> None:
        self._ssl = ssl
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: an aiohttp session belongs to the running loop.
        connector = aiohttp.TCPConnector(
            limit=0, ssl=self._ssl, keepalive_timeout=_KEEPALIVE_SECONDS
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        timeout = request.extensions.get("timeout", {})
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            data: Any = request.content or None
        except httpx.RequestNotRead:  # a streamed body (file uploads)
            data = request.stream
            headers = [(k, v) for k, v in headers if k.lower() != "transfer-encoding"]
        try:
            response = await session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=data,
                allow_redirects=False,  # httpx follows them, checking each hop
                compress=False,
                timeout=aiohttp.ClientTimeout(
                    sock_connect=timeout.get("connect"),
                    sock_read=timeout.get("read"),
                    connect=timeout.get("pool"),
                ),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except _AIOHTTP_ERRORS as exc:
            raise _precise(exc, request, reading=False) from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode("latin-1", "replace")
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_chunked(_CHUNK):
                yield chunk
        except _AIOHTTP_ERRORS as exc:
            raise _precise(exc, self._request, reading=True) from exc

    async def aclose(self) -> None:
        # A body read to its end hands the connection back to the pool; one left
        # unread closes it (aiohttp cannot reuse it).
        try:
            self._response.release()
            await self._response.wait_for_close()
        except _AIOHTTP_ERRORS as exc:
            raise _precise(exc, self._request, reading=True) from exc


#: What aiohttp raises for a failed exchange (each becomes an httpx error).
_AIOHTTP_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def _precise(exc: BaseException, request: httpx.Request, *, reading: bool) -> httpx.TransportError:
    """The httpx error for `exc`, as httpcore would raise it."""
    error = _httpx_error(exc, reading)
    return error(str(exc) or type(exc).__name__, request=request)


def _httpx_error(exc: BaseException, reading: bool) -> type[httpx.TransportError]:
    """The httpx error httpcore raises for what `exc` reports."""
    if isinstance(exc, aiohttp.SocketTimeoutError):
        return httpx.ReadTimeout
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout
    if isinstance(exc, asyncio.TimeoutError):
        return httpx.ReadTimeout if reading else httpx.ConnectTimeout
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        # Before an answer, on a pooled connection: the server closed it while idle.
        return httpx.RemoteProtocolError
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return httpx.ReadError
    if isinstance(exc, aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError  # a malformed or oversized answer head
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol
    return httpx.NetworkError
