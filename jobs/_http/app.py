"""HTTP for one app: its URLs, its headers, and the one place where httpx errors and
HTTP statuses become `jobs` errors."""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from .._protocol.limits import Limits, over_limit
from .._protocol.ratelimit import retry_after
from ..errors import (
    AppError,
    AuthError,
    ConnectionFailed,
    DownloadFailed,
    InputRejected,
    JobsError,
    ProtocolError,
    QueueFull,
    RateLimited,
    ServerError,
)
from .bodies import ACCEPT_ENCODING, read_capped

__all__ = ["AppHttp", "check_status", "limits_timeout", "parse_json", "translate_errors"]

#: Routes whose parsed URL is kept (a client posts to a handful).
_MAX_PARSED = 64
#: Methods httpx sends a Content-Length for even without a body.
_SENDS_LENGTH = frozenset({"POST", "PUT", "PATCH"})
#: `json.dumps(..., separators=(",", ":"))` without making an encoder for every call.
_compact_json = json.JSONEncoder(separators=(",", ":")).encode
#: Enough of an error answer to quote it; the rest is not read.
_ERROR_BODY_BYTES = 64 * 1024


class AppHttp:
    """Builds an app's URLs and sends its requests through a shared `httpx.AsyncClient`.

    Every answer is read under `limits`: JSON bodies up to `max_json_bytes` (after
    decompression, inflated piece by piece), error bodies up to 64 KiB, and every
    connection and read bounded by the limits' timeouts."""

    __slots__ = (
        "_merged",
        "_urls",
        "base_url",
        "headers",
        "http",
        "limits",
        "prefix",
        "request_timeout",
    )

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        *,
        prefix: str = "",
        headers: Mapping[str, str] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.prefix = prefix
        self.headers = dict(headers or {})
        self.limits = limits or Limits()
        #: Replaces the limits' timeouts for ordinary requests (gradio_client's
        #: `httpx_kwargs`); the event stream keeps the limits' own.
        self.request_timeout: httpx.Timeout | None = None
        self._urls: dict[str, httpx.URL] = {}
        self._merged: dict[tuple[Any, ...], tuple[list[tuple[bytes, bytes]], bool]] = {}

    @property
    def timeout(self) -> httpx.Timeout:
        return self.request_timeout or limits_timeout(self.limits)

    def __repr__(self) -> str:
        # Headers may hold a token: never shown.
        return f"AppHttp({self.base_url!r}, prefix={self.prefix!r})"

    def url(self, route: str, *, prefixed: bool = True) -> str:
        if route.startswith(("http://", "https://")):
            return route
        return f"{self.base_url}{self.prefix if prefixed else ''}/{route.lstrip('/')}"

    async def get_json(
        self, route: str, *, prefixed: bool = True, params: Mapping[str, str] | None = None
    ) -> Any:
        url = self.url(route, prefixed=prefixed)
        response, body = await self.exchange("GET", url, params=params)
        check_status(response, body)
        return parse_json(body, url)

    async def post_json(
        self, route: str, body: Any, *, headers: Mapping[str, str] | None = None
    ) -> Any:
        url = self.url(route)
        content = _compact_json(body).encode()
        merged = {**(headers or {}), "content-type": "application/json"}
        response, answer = await self._send_retrying_stale(
            "POST", url, content=content, headers=merged, parsed=self._parsed(url)
        )
        check_status(response, answer)
        return parse_json(answer, url)

    async def post_form(
        self, route: str, data: Mapping[str, str], *, prefixed: bool = True
    ) -> httpx.Response:
        """POST a form; the answer's status is left for the caller to judge."""
        response, _ = await self.exchange("POST", self.url(route, prefixed=prefixed), data=data)
        return response

    async def post_files(self, route: str, files: list[tuple[str, tuple[str, Any, str]]]) -> Any:
        url = self.url(route)
        response, body = await self.exchange("POST", url, files=files)
        check_status(response, body)
        return parse_json(body, url)

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        parsed: httpx.URL | None = None,
        **kwargs: Any,
    ) -> tuple[httpx.Response, bytes]:
        """Send one request to the app and read its answer as a JSON-sized body: at most
        `max_json_bytes` for a success (over it: `LimitExceeded`), 64 KiB of an error.
        The status is not checked (see `check_status`). `parsed` is `url` parsed."""
        with translate_errors(url, self.limits):
            async with self._send(
                method, parsed or url, url, headers, self.timeout, **kwargs
            ) as response:
                return response, await self._read_json_body(response, url)

    async def _read_json_body(self, response: httpx.Response, url: str) -> bytes:
        if response.status_code >= 400:
            return await read_capped(response, _ERROR_BODY_BYTES, on_over=None)
        cap = self.limits.max_json_bytes

        def over() -> JobsError:
            return over_limit("the JSON answer", limit="max_json_bytes", value=cap, url=url)

        declared = response.headers.get("content-length", "")
        if (
            declared.isdigit()
            and int(declared) > cap
            and not response.headers.get("content-encoding")
        ):
            raise over()
        return await read_capped(response, cap, on_over=over)

    @contextlib.asynccontextmanager
    async def stream(
        self,
        method: str,
        route: str,
        *,
        params: Mapping[str, str] | None = None,
        prefixed: bool = True,
    ) -> AsyncIterator[httpx.Response]:
        """An answer to read as it arrives (decode it with `bodies.iter_decoded`). An
        error status raises before anything is yielded."""
        url = self.url(route, prefixed=prefixed)
        # One parse of the whole URL: httpx parses a URL and its params separately.
        full = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}" if params else url
        with translate_errors(url, self.limits):
            async with self._send(method, full, url, None, limits_timeout(self.limits)) as response:
                if response.status_code >= 400:
                    check_status(
                        response, await read_capped(response, _ERROR_BODY_BYTES, on_over=None)
                    )
                yield response

    def _parsed(self, url: str) -> httpx.URL:
        """`url` parsed once per client: httpx's URL parser is a good part of the CPU a
        request costs, and a batch posts to the same few routes thousands of times."""
        parsed = self._urls.get(url)
        if parsed is None:
            if len(self._urls) >= _MAX_PARSED:
                self._urls.clear()
            parsed = self._urls[url] = httpx.URL(url)
        return parsed

    @contextlib.asynccontextmanager
    async def _send(
        self,
        method: str,
        target: str | httpx.URL,
        url: str,
        extra: Mapping[str, str] | None,
        timeout: httpx.Timeout,
        **kwargs: Any,
    ) -> AsyncIterator[httpx.Response]:
        """`http.stream(...)`, with the request built here when it is a plain one (a JSON
        body or none): httpx's `build_request` merges the client's headers, cookies and
        params into fresh objects, and `Request` then looks each of its own headers up
        to add Host and Content-Length, every time: a good part of the CPU a request
        costs. The request sent is the same, header for header."""
        http = self.http
        if kwargs.keys() - {"content"} or http.params:
            request = http.build_request(
                method, target, headers=self._headers(url, extra), timeout=timeout, **kwargs
            )
        else:
            parsed = httpx.URL(target)
            body: bytes = kwargs.get("content") or b""
            headers, has_length = self._merged_headers(url, extra, parsed.netloc)
            if (body or method in _SENDS_LENGTH) and not has_length:
                headers = [*headers, (b"Content-Length", b"%d" % len(body))]
            # `stream=` rather than `content=`: httpx adds no header of its own then.
            request = httpx.Request(
                method,
                parsed,
                headers=headers,
                stream=httpx.ByteStream(body),
                extensions={"timeout": timeout.as_dict()},
            )
            request.read()
            if http.cookies:
                httpx.Cookies(http.cookies).set_cookie_header(request)
        response = await http.send(request, stream=True)
        try:
            yield response
        finally:
            await response.aclose()

    def _merged_headers(
        self, url: str, extra: Mapping[str, str] | None, host: bytes
    ) -> tuple[list[tuple[bytes, bytes]], bool]:
        """Host (unless a header gives one), then the client's headers with ours over them
        (as `build_request` merges them), and whether they give the body's length; made
        once for each combination."""
        own = url.startswith(self.base_url + "/")
        key = (
            host,
            tuple(self.http.headers.raw),
            tuple(self.headers.items()) if own else None,
            tuple(extra.items()) if extra else (),
        )
        merged = self._merged.get(key)
        if merged is None:
            if len(self._merged) >= _MAX_PARSED:
                self._merged.clear()
            headers = httpx.Headers(self.http.headers)
            headers.update(self._headers(url, extra))
            auto = [] if "host" in headers else [(b"Host", host)]
            has_length = "content-length" in headers or "transfer-encoding" in headers
            merged = self._merged[key] = ([*auto, *headers.raw], has_length)
        return merged

    def _headers(self, url: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        # Credentials go to the app's own host only, never to a URL an app handed back.
        own = url.startswith(self.base_url + "/")
        return {
            **(self.headers if own else {}),
            "accept-encoding": ACCEPT_ENCODING,
            **(extra or {}),
        }

    async def _send_retrying_stale(
        self, method: str, url: str, **kwargs: Any
    ) -> tuple[httpx.Response, bytes]:
        # uvicorn closes a keep-alive connection after a 500; the next request on that
        # pooled connection fails before reaching the app. It was never processed, so
        # sending it once more is safe.
        for attempt in (1, 2):
            try:
                return await self.exchange(method, url, **kwargs)
            except ConnectionFailed as exc:
                stale = isinstance(exc.__cause__, httpx.RemoteProtocolError | httpx.ReadError)
                if attempt == 2 or not stale:
                    raise
        raise AssertionError("unreachable")


_TIMEOUTS: dict[type[httpx.TimeoutException], tuple[str, str]] = {
    httpx.ConnectTimeout: ("connect_timeout", "could not connect"),
    httpx.PoolTimeout: ("connect_timeout", "waited for a free connection of the pool"),
    httpx.ReadTimeout: ("read_timeout", "got no answer (no bytes)"),
    httpx.WriteTimeout: ("read_timeout", "could not send the request (the server reads nothing)"),
}


@contextlib.contextmanager
def translate_errors(url: str, limits: Limits | None = None) -> Iterator[None]:
    """Turn httpx transport errors into `ConnectionFailed`, keeping the cause."""
    try:
        yield
    except JobsError:
        raise
    except httpx.TimeoutException as exc:
        limits = limits or Limits()
        name, what = _TIMEOUTS.get(type(exc), ("read_timeout", "timed out"))
        value = getattr(limits, name)
        raise ConnectionFailed(
            f"{what} from {url} within {value:g} s ({name}): the app may be overloaded or "
            "unreachable. Check that it responds; if it is only slow, raise the limit: "
            f"AsyncClient(..., limits=Limits({name}=...)).",
            url=url,
        ) from exc
    except httpx.TransportError as exc:
        raise ConnectionFailed(
            f"could not reach {url}: {exc or type(exc).__name__}. Check the URL and that the "
            "app is running.",
            url=url,
        ) from exc


def check_status(response: httpx.Response, body: bytes) -> None:
    """Raise the `jobs` error for an HTTP error status; `body` is (the start of) its body."""
    status = response.status_code
    if status < 400:
        return
    url = str(response.request.url)
    detail = _detail(response, body)
    if _is_file_route(url) and status in (403, 404):
        raise DownloadFailed(
            f"the app would not serve the output file {url} ({status}: {detail}); it is "
            "outside the app's allowed paths or no longer exists. Ask the app's author to "
            "return files from its cache or allowed_paths.",
            url=url,
            status_code=status,
        )
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
        raise _input_rejected(response, body, url)
    if status == 503 and "queue is full" in detail.lower():
        raise QueueFull(
            f"the app's queue is full ({detail}); wait for running jobs to finish or send "
            "fewer at once",
            url=url,
            status_code=status,
            retry_after=_retry_after(response),
        )
    if status == 400 and url.endswith("/queue/join") and detail not in _JOIN_PROTOCOL_ERRORS:
        # The app refused the job while queueing it: its validator raised, not us.
        raise AppError(
            f"the app refused the job before running it (400: {detail}); its validator "
            "raised an error — check the inputs, or the app's validator",
            url=url,
            app_message=detail,
        )
    if status >= 500:
        raise ServerError(
            f"{url} failed with HTTP {status}: {detail}",
            url=url,
            status_code=status,
            retry_after=_retry_after(response),
        )
    raise ProtocolError(f"unexpected HTTP {status} from {url}: {detail}", url=url)


#: 400s of queue/join that mean this client sent a malformed request.
_JOIN_PROTOCOL_ERRORS = {"No function index provided.", "Session hash not found."}


def _is_file_route(url: str) -> bool:
    path = httpx.URL(url).path
    return "/file=" in path or "/file/" in path


def _body_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def _detail(response: httpx.Response, body: bytes) -> str:
    parsed = _body_json(body)
    if parsed is None:
        text = body[:300].decode("utf-8", errors="replace").strip()
        return text or response.reason_phrase
    if isinstance(parsed, dict) and "detail" in parsed:
        detail = parsed["detail"]
        if isinstance(detail, dict):
            return str(detail.get("error") or detail)
        return str(detail)
    return str(parsed)[:300]


def _input_rejected(response: httpx.Response, body: bytes, url: str) -> JobsError:
    parsed = _body_json(body)
    detail = parsed.get("detail") if isinstance(parsed, dict) else None
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
        return ProtocolError(
            f"{url} rejected the request (422): {_detail(response, body)}", url=url
        )
    listing = "; ".join(f"{k}: {v}" for k, v in problems.items())
    return InputRejected(f"the app rejected the inputs: {listing}", url=url, problems=problems)


def _retry_after(response: httpx.Response) -> float | None:
    return retry_after(response.headers)


def parse_json(body: bytes, url: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(
            f"{url} answered with something that is not JSON ({body[:120]!r}); is this a "
            "Gradio app?",
            url=url,
        ) from exc


@functools.lru_cache(maxsize=16)
def limits_timeout(limits: Limits) -> httpx.Timeout:
    """`limits`' per operation (not total) timeouts, as httpx takes them (made once per
    `Limits`: every request and stream of a batch asks)."""
    return httpx.Timeout(
        connect=limits.connect_timeout,
        read=limits.read_timeout,
        write=limits.read_timeout,
        pool=limits.connect_timeout,
    )
