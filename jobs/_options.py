"""gradio_client's `Client` keyword arguments, translated to ours in one place.

gradio_client 2.x takes `token`, `max_workers`, `verbose`, `auth`, `httpx_kwargs`,
`headers`, `download_files`, `ssl_verify`, `analytics_enabled` and `oauth_token`; each is
accepted with the same meaning, or refused with a `TypeError` naming it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import httpx

__all__ = ["HttpOptions", "http_options", "pick_download_target", "pick_token"]

# What gradio_client passes its `httpx_kwargs` to (httpx.get / post / stream) accepts.
_HTTPX_KEYS = frozenset(
    {
        "params",
        "headers",
        "cookies",
        "auth",
        "proxy",
        "follow_redirects",
        "verify",
        "timeout",
        "trust_env",
        "cert",
    }
)


class HttpOptions:
    """What `httpx_kwargs` asks for: options for the `httpx.AsyncClient` we make, and a
    timeout for ordinary requests (not the event stream, which idles between events)."""

    __slots__ = ("client_kwargs", "timeout")

    def __init__(self, client_kwargs: dict[str, Any], timeout: httpx.Timeout | None) -> None:
        self.client_kwargs = client_kwargs
        self.timeout = timeout


def http_options(
    httpx_kwargs: Mapping[str, Any] | None, *, http: httpx.AsyncClient | None
) -> HttpOptions:
    """Check `httpx_kwargs` (gradio_client's spelling) and split out its timeout."""
    if not httpx_kwargs:
        return HttpOptions({}, None)
    if http is not None:
        raise TypeError(
            "httpx_kwargs= configures the HTTP client this client makes; with http= you pass "
            "your own httpx.AsyncClient, so configure that one instead"
        )
    unknown = sorted(set(httpx_kwargs) - _HTTPX_KEYS)
    if unknown:
        raise TypeError(
            f"httpx_kwargs: {', '.join(map(repr, unknown))} not supported; the keys that "
            f"apply are {', '.join(sorted(_HTTPX_KEYS))}"
        )
    kwargs = dict(httpx_kwargs)
    timeout = kwargs.pop("timeout", None)
    return HttpOptions(kwargs, None if timeout is None else httpx.Timeout(timeout))


def pick_token(token: str | None, hf_token: str | None) -> str | None:
    """`token=` is gradio_client's name for `hf_token=`."""
    if token is not None and hf_token is not None and token != hf_token:
        raise TypeError("give the Hugging Face token as `hf_token` or `token`, not both")
    return hf_token if hf_token is not None else token


def pick_download_target(
    download_files: str | os.PathLike[str] | bool, output_dir: str | os.PathLike[str] | None
) -> str | os.PathLike[str] | bool:
    """`output_dir=` is gradio_client's older name for a `download_files=` folder."""
    if output_dir is None:
        return download_files
    if download_files not in (True, output_dir):
        raise TypeError("give the download folder as `download_files` or `output_dir`, not both")
    return output_dir
