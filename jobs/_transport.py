"""HTTP for one app: its URLs, its headers, and the one place where httpx errors and
HTTP statuses become `jobs` errors."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx

from ._ratelimit import retry_after
from .errors import (
    AuthError,
    ConnectionFailed,
    InputRejected,
    JobsError,
    ProtocolError,
    QueueFull,
    RateLimited,
    ServerError,
)

__all__ = ["Transport", "translate_errors"]

#: The event stream sends a heartbeat every 15 s; a read that waits much longer means the
#: server is gone. No total timeout: jobs may legitimately run for hours.
STREAM_TIMEOUT = httpx.Timeout(10.0, read=60.0)
REQUEST_TIMEOUT = httpx.Timeout(30.0, read=120.0)


class Transport:
    """Builds an app's URLs and sends its requests through a shared `httpx.AsyncClient`."""

    __slots__ = ("base_url", "headers", "http", "prefix")

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        prefix: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.prefix = prefix
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        # Headers may hold a token: never shown.
        return f"Transport({self.base_url!r}, prefix={self.prefix!r})"

    def url(self, route: str, *, prefixed: bool = True) -> str:
        if route.startswith(("http://", "https://")):
            return route
        return f"{self.base_url}{self.prefix if prefixed else ''}/{route.lstrip('/')}"

    async def get_json(
        self, route: str, *, prefixed: bool = True, params: Mapping[str, str] | None = None
    ) -> Any:
        url = self.url(route, prefixed=prefixed)
        with translate_errors(url):
            response = await self.http.get(
                url, params=params, headers=self.headers, timeout=REQUEST_TIMEOUT
            )
        return _json(_check(response), url)

    async def post_json(
        self, route: str, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        url = self.url(route)
        merged = {**self.headers, **(headers or {})}
        content = json.dumps(body, separators=(",", ":")).encode()
        merged["content-type"] = "application/json"
        response = await self._send_retrying_stale("POST", url, content=content, headers=merged)
        return _json(_check(response), url)

    async def post_form(
        self, route: str, data: Mapping[str, str], *, prefixed: bool = True
    ) -> httpx.Response:
        url = self.url(route, prefixed=prefixed)
        with translate_errors(url):
            return await self.http.post(
                url, data=data, headers=self.headers, timeout=REQUEST_TIMEOUT
            )

    async def post_files(self, route: str, files: list[tuple[str, tuple[str, Any, str]]]) -> Any:
        url = self.url(route)
        with translate_errors(url):
            response = await self.http.post(
                url,
                files=files,
                headers=self.headers,
                timeout=httpx.Timeout(30.0, write=600.0, read=600.0),
            )
        return _json(_check(response), url)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = STREAM_TIMEOUT,
        prefixed: bool = True,
    ) -> AsyncIterator[httpx.Response]:
        url = self.url(route, prefixed=prefixed)
        # Credentials go to the app's own host only, never to a URL an app handed back.
        headers = self.headers if url.startswith(self.base_url + "/") else {}
        with translate_errors(url):
            async with self.http.stream(
                method, url, params=params, headers=headers, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    await response.aread()
                    _check(response)
                yield response

    async def _send_retrying_stale(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        # uvicorn closes a keep-alive connection after a 500; the next request on that
        # pooled connection fails before reaching the app. It was never processed, so
        # sending it once more is safe.
        for attempt in (1, 2):
            try:
                with translate_errors(url):
                    return await self.http.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
            except ConnectionFailed as exc:
                stale = isinstance(exc.__cause__, httpx.RemoteProtocolError | httpx.ReadError)
                if attempt == 2 or not stale:
                    raise
        raise AssertionError("unreachable")


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn httpx transport errors into `ConnectionFailed`, keeping the cause."""
    try:
        yield
    except JobsError:
        raise
    except httpx.TimeoutException as exc:
        raise ConnectionFailed(
            f"timed out talking to {url} ({type(exc).__name__}); the app may be overloaded "
            "or unreachable — check it responds, then try again",
            url=url,
        ) from exc
    except httpx.TransportError as exc:
        raise ConnectionFailed(
            f"could not reach {url}: {exc or type(exc).__name__}. Check the URL and that the "
            "app is running.",
            url=url,
        ) from exc


def _check(response: httpx.Response) -> httpx.Response:
    status = response.status_code
    if status < 400:
        return response
    url = str(response.request.url)
    detail = _detail(response)
    if status in (401, 403):
        raise AuthError(
            f"{url} refused access ({status}: {detail}). Pass auth=(user, password) for a "
            "password-protected app, or an HF token with access for a private Space.",
            url=url,
        )
    if status == 429:
        retry_after = _retry_after(response)
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        raise RateLimited(
            f"{url} is rate limiting requests (429){wait}", url=url, retry_after=retry_after
        )
    if status == 422:
        raise _input_rejected(response, url)
    if status == 503 and "queue is full" in detail.lower():
        raise QueueFull(
            f"the app's queue is full ({detail}); wait for running jobs to finish or send "
            "fewer at once",
            url=url,
            status_code=status,
            retry_after=_retry_after(response),
        )
    if status >= 500:
        raise ServerError(
            f"{url} failed with HTTP {status}: {detail}",
            url=url,
            status_code=status,
            retry_after=_retry_after(response),
        )
    raise ProtocolError(f"unexpected HTTP {status} from {url}: {detail}", url=url)


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return response.text[:300].strip() or response.reason_phrase
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        if isinstance(detail, dict):
            return str(detail.get("error") or detail)
        return str(detail)
    return str(body)[:300]


def _input_rejected(response: httpx.Response, url: str) -> JobsError:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = None
    problems: dict[str, str] = {}
    if isinstance(detail, list):
        for item in detail:
            if not isinstance(item, dict):
                continue
            if item.get("__type__") == "validate" and not item.get("is_valid", True):
                problems[str(item.get("parameter_name"))] = str(item.get("message"))
            elif "loc" in item:
                problems[".".join(str(p) for p in item["loc"])] = str(item.get("msg"))
    if not problems:
        return ProtocolError(f"{url} rejected the request (422): {_detail(response)}", url=url)
    listing = "; ".join(f"{k}: {v}" for k, v in problems.items())
    return InputRejected(f"the app rejected the inputs: {listing}", url=url, problems=problems)


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after(response.headers)


def _json(response: httpx.Response, url: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ProtocolError(
            f"{url} answered with something that is not JSON ({response.text[:120]!r}); is "
            "this a Gradio app?",
            url=url,
        ) from exc
