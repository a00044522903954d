"""Opening an app: where it is, who we are to it, and what its API is."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx

from ._http.app import AppHttp, check_status
from ._protocol.limits import Limits
from ._protocol.schema import AppSchema
from ._protocol.v3schema import has_info_route, is_v3
from .errors import AuthError, JobsError, ProtocolError

__all__ = ["AppConnection", "ConnectOptions", "open_app", "read_schema"]

# Paths users paste along with an app's URL that are not part of its root.
_ROUTE_SUFFIXES = ("/gradio_api/info", "/gradio_api", "/config", "/info", "/api", "/?view=api")


@dataclass(frozen=True, slots=True, kw_only=True)
class AppConnection:
    app_http: AppHttp
    schema: AppSchema
    space_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectOptions:
    """How `AsyncClient` opens its app: the constructor's options, checked once and
    carried as one typed value (a misspelled option is a type error, not a silent
    default)."""

    hf_token: str | None = None
    auth: tuple[str, str] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    token_header: str = "X-HF-Authorization"
    hub_endpoint: str | None = None
    space_deadline: float = 600.0
    on_space_stage: Callable[[str], None] | None = None
    token_hosts: tuple[str, ...] = ()
    #: Replaces the limits' timeouts for ordinary requests (`httpx_kwargs["timeout"]`).
    request_timeout: httpx.Timeout | None = None
    limits: Limits = field(default_factory=Limits)


async def open_app(http: httpx.AsyncClient, src: str, options: ConnectOptions) -> AppConnection:
    """Resolve `src` (URL or Space id), log in if asked, and read the app's API."""
    from ._hub import spaces

    url = None if spaces.looks_like_space_id(src) else _normalize_url(src)
    # The token is only ever sent to a Space, a Hugging Face host or a host the caller
    # names: for any other app the saved login is not read (nor huggingface_hub loaded).
    may_send = url is None or _token_allowed(url, options.token_hosts)
    token = spaces.hf_token_from_env(options.hf_token) if options.hf_token or may_send else None
    space_id: str | None = None
    if token:
        # Redirects are followed inside httpx, which strips only `Authorization` when the
        # host changes: this hook strips our token header from every hop it may not reach.
        http.event_hooks["request"].append(_token_guard(options.token_header, options.token_hosts))

    async def wake(host: str) -> None:
        # Any request wakes a sleeping Space; its answer does not matter (and is not read).
        with contextlib.suppress(httpx.HTTPError):
            async with http.stream(
                "GET",
                f"{host.rstrip('/')}/config",
                timeout=10.0,
                headers=_token_headers(host, token, options.token_header, options.token_hosts),
            ):
                pass

    if url is None:
        space_id = src
        base = await spaces.wait_until_running(
            src,
            token=token,
            endpoint=options.hub_endpoint,
            deadline=options.space_deadline,
            on_stage=options.on_space_stage,
            wake=wake,
        )
    else:
        base = url
    request_headers = {
        **options.headers,
        **_token_headers(base, token, options.token_header, options.token_hosts),
    }
    app_http = AppHttp(http, base, headers=request_headers, limits=options.limits)
    app_http.request_timeout = options.request_timeout
    schema = await read_schema(app_http, auth=options.auth)
    return AppConnection(app_http=app_http, schema=schema, space_id=space_id or schema.space_id)


async def read_schema(app_http: AppHttp, *, auth: tuple[str, str] | None = None) -> AppSchema:
    """Log in (with `auth`) and read the app's config and API info at `app_http`'s
    address, as it is now: an app restarted there may serve another API than when it was
    first read (and has forgotten the login)."""
    if auth is not None:
        await _login(app_http, auth)
    config = await _read_config(app_http)
    AppSchema.check_protocol(config, app_http.base_url)
    app_http.prefix = str(config.get("api_prefix") or "")
    if is_v3(config):
        # 3.x: one info route, from 3.37 on (older apps are read from their config).
        info = public_info = (
            await app_http.get_json("info", params={"serialize": "False"})
            if has_info_route(config)
            else None
        )
        return AppSchema.parse(config, info or {}, url=app_http.base_url, public_info=public_info)
    info, public_info = await _read_info(app_http)
    return AppSchema.parse(config, info, url=app_http.base_url, public_info=public_info)


def _token_headers(
    url: str, token: str | None, header: str, extra_hosts: Sequence[str]
) -> dict[str, str]:
    """The HF token goes to Hugging Face hosts (and hosts the caller names) only."""
    if token and _token_allowed(url, extra_hosts):
        return {header: f"Bearer {token}"}
    return {}


def _token_allowed(url: str, extra_hosts: Sequence[str]) -> bool:
    from ._hub import spaces

    host = (urlsplit(url).hostname or "").lower()
    return spaces.is_hf_host(url) or host in {h.lower() for h in extra_hosts}


def _token_guard(
    header: str, extra_hosts: Sequence[str]
) -> Callable[[httpx.Request], Awaitable[None]]:
    async def guard(request: httpx.Request) -> None:
        if header in request.headers and not _token_allowed(str(request.url), extra_hosts):
            del request.headers[header]

    return guard


def _normalize_url(src: str) -> str:
    if not src.startswith(("http://", "https://")):
        raise ProtocolError(
            f"{src!r} is neither a URL (http:// or https://) nor a Space id (owner/name)"
        )
    parts = urlsplit(src)
    path = parts.path.rstrip("/")
    for suffix in _ROUTE_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


async def _login(app_http: AppHttp, auth: tuple[str, str]) -> None:
    user, password = auth
    response = await app_http.post_form(
        "login", {"username": user, "password": password}, prefixed=False
    )
    if response.status_code == 200:
        return
    if response.status_code in (400, 401, 403):
        raise AuthError(
            f"login to {app_http.base_url} as {user!r} failed: wrong user name or password",
            url=app_http.base_url,
        )
    raise ProtocolError(
        f"login to {app_http.base_url} answered HTTP {response.status_code}; does this app "
        "use password auth?",
        url=app_http.base_url,
    )


async def _read_info(app_http: AppHttp) -> tuple[Any, Any]:
    """The info route with every endpoint (for undocumented ones) and without (what
    gradio_client reads, and returns from `view_api`), fetched side by side."""
    answers: dict[str, Any] = {}
    failures: list[JobsError] = []

    async def fetch(key: str, params: Mapping[str, str] | None) -> None:
        try:
            answers[key] = await app_http.get_json("info", params=params)
        except JobsError as exc:  # raised as itself below, not inside an exception group
            failures.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(fetch, "all", {"all_endpoints": "True"})
        group.start_soon(fetch, "public", None)
    if failures:
        raise failures[0]
    return answers["all"], answers["public"]


async def _read_config(app_http: AppHttp) -> dict[str, Any]:
    url = app_http.url("config", prefixed=False)
    response, body = await app_http.exchange("GET", url)
    if response.status_code == 401:
        raise AuthError(
            f"{app_http.base_url} needs a login: pass auth=(user, password)",
            url=app_http.base_url,
        )
    if response.status_code == 404:
        raise ProtocolError(
            f"{app_http.base_url} has no /config route: is it a Gradio app, and is this its "
            "root URL?",
            url=app_http.base_url,
        )
    check_status(response, body)
    try:
        config = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{url} did not answer JSON: is it a Gradio app?", url=url) from exc
    if not isinstance(config, dict):
        raise ProtocolError(f"{url} answered {type(config).__name__}, not an app config", url=url)
    return config
