"""Opening an app: where it is, who we are to it, and what its API is."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx

from ._limits import Limits
from ._schema import AppSchema
from ._transport import Transport, check_status
from ._v3schema import has_info_route, is_v3
from .errors import AuthError, JobsError, ProtocolError

__all__ = ["AppConnection", "open_app", "read_schema"]

# Paths users paste along with an app's URL that are not part of its root.
_ROUTE_SUFFIXES = ("/gradio_api/info", "/gradio_api", "/config", "/info", "/api", "/?view=api")


@dataclass(frozen=True, slots=True, kw_only=True)
class AppConnection:
    transport: Transport
    schema: AppSchema
    space_id: str | None


async def open_app(
    http: httpx.AsyncClient,
    src: str,
    *,
    hf_token: str | None,
    auth: tuple[str, str] | None,
    headers: Mapping[str, str],
    token_header: str,
    hub_endpoint: str | None,
    space_deadline: float,
    on_space_stage: Callable[[str], None] | None,
    token_hosts: Sequence[str] = (),
    request_timeout: httpx.Timeout | None = None,
    limits: Limits | None = None,
) -> AppConnection:
    """Resolve `src` (URL or Space id), log in if asked, and read the app's API."""
    from . import _spaces

    url = None if _spaces.looks_like_space_id(src) else _normalize_url(src)
    # The token is only ever sent to a Space, a Hugging Face host or a host the caller
    # names: for any other app the saved login is not read (nor huggingface_hub loaded).
    may_send = url is None or _token_allowed(url, token_hosts)
    token = _spaces.hf_token_from_env(hf_token) if hf_token or may_send else None
    space_id: str | None = None
    if token:
        # Redirects are followed inside httpx, which strips only `Authorization` when the
        # host changes: this hook strips our token header from every hop it may not reach.
        http.event_hooks["request"].append(_token_guard(token_header, token_hosts))

    async def wake(host: str) -> None:
        # Any request wakes a sleeping Space; its answer does not matter (and is not read).
        with contextlib.suppress(httpx.HTTPError):
            async with http.stream(
                "GET",
                f"{host.rstrip('/')}/config",
                timeout=10.0,
                headers=_token_headers(host, token, token_header, token_hosts),
            ):
                pass

    if url is None:
        space_id = src
        base = await _spaces.wait_until_running(
            src,
            token=token,
            endpoint=hub_endpoint,
            deadline=space_deadline,
            on_stage=on_space_stage,
            wake=wake,
        )
    else:
        base = url
    request_headers = {**headers, **_token_headers(base, token, token_header, token_hosts)}
    transport = Transport(http, base, headers=request_headers, limits=limits)
    transport.request_timeout = request_timeout
    schema = await read_schema(transport, auth=auth)
    return AppConnection(transport=transport, schema=schema, space_id=space_id or schema.space_id)


async def read_schema(transport: Transport, *, auth: tuple[str, str] | None = None) -> AppSchema:
    """Log in (with `auth`) and read the app's config and API info at `transport`'s
    address, as it is now: an app restarted there may serve another API than when it was
    first read (and has forgotten the login)."""
    if auth is not None:
        await _login(transport, auth)
    config = await _read_config(transport)
    AppSchema.check_protocol(config, transport.base_url)
    transport.prefix = str(config.get("api_prefix") or "")
    if is_v3(config):
        # 3.x: one info route, from 3.37 on (older apps are read from their config).
        info = public_info = (
            await transport.get_json("info", params={"serialize": "False"})
            if has_info_route(config)
            else None
        )
        return AppSchema.parse(config, info or {}, url=transport.base_url, public_info=public_info)
    info, public_info = await _read_info(transport)
    return AppSchema.parse(config, info, url=transport.base_url, public_info=public_info)


def _token_headers(
    url: str, token: str | None, header: str, extra_hosts: Sequence[str]
) -> dict[str, str]:
    """The HF token goes to Hugging Face hosts (and hosts the caller names) only."""
    if token and _token_allowed(url, extra_hosts):
        return {header: f"Bearer {token}"}
    return {}


def _token_allowed(url: str, extra_hosts: Sequence[str]) -> bool:
    from . import _spaces

    host = (urlsplit(url).hostname or "").lower()
    return _spaces.is_hf_host(url) or host in {h.lower() for h in extra_hosts}


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


async def _login(transport: Transport, auth: tuple[str, str]) -> None:
    user, password = auth
    response = await transport.post_form(
        "login", {"username": user, "password": password}, prefixed=False
    )
    if response.status_code == 200:
        return
    if response.status_code in (400, 401, 403):
        raise AuthError(
            f"login to {transport.base_url} as {user!r} failed: wrong user name or password",
            url=transport.base_url,
        )
    raise ProtocolError(
        f"login to {transport.base_url} answered HTTP {response.status_code}; does this app "
        "use password auth?",
        url=transport.base_url,
    )


async def _read_info(transport: Transport) -> tuple[Any, Any]:
    """The info route with every endpoint (for undocumented ones) and without (what
    gradio_client reads, and returns from `view_api`), fetched side by side."""
    answers: dict[str, Any] = {}
    failures: list[JobsError] = []

    async def fetch(key: str, params: Mapping[str, str] | None) -> None:
        try:
            answers[key] = await transport.get_json("info", params=params)
        except JobsError as exc:  # raised as itself below, not inside an exception group
            failures.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(fetch, "all", {"all_endpoints": "True"})
        group.start_soon(fetch, "public", None)
    if failures:
        raise failures[0]
    return answers["all"], answers["public"]


async def _read_config(transport: Transport) -> dict[str, Any]:
    url = transport.url("config", prefixed=False)
    response, body = await transport.exchange("GET", url)
    if response.status_code == 401:
        raise AuthError(
            f"{transport.base_url} needs a login: pass auth=(user, password)",
            url=transport.base_url,
        )
    if response.status_code == 404:
        raise ProtocolError(
            f"{transport.base_url} has no /config route: is it a Gradio app, and is this its "
            "root URL?",
            url=transport.base_url,
        )
    check_status(response, body)
    try:
        config = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"{url} did not answer JSON: is it a Gradio app?", url=url) from exc
    if not isinstance(config, dict):
        raise ProtocolError(f"{url} answered {type(config).__name__}, not an app config", url=url)
    return config
