"""The one way `_hub` calls the Hub: an `HfApi` for an endpoint and a token, a blocking
call run in a worker thread under a timeout with errors translated, and Space ids checked
before any is sent.

    api = hub_api(endpoint, token)
    runtime = await call_hub(api, space_id, api.get_space_runtime, space_id)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar, cast

import anyio

from ..errors import SpaceError

if TYPE_CHECKING:
    from huggingface_hub import HfApi

__all__ = [
    "SPACE_ID_RE",
    "call_hub",
    "check_space_id",
    "hub_api",
    "looks_like_space_id",
    "page_url",
]

T = TypeVar("T")

#: `owner/name`: owners are letters, digits, `-`, `_`; names may also hold dots.
SPACE_ID_RE = re.compile(
    r"^(?P<owner>[A-Za-z0-9][A-Za-z0-9_-]*)/(?P<name>[A-Za-z0-9_][\w.-]*)$", re.ASCII
)


def looks_like_space_id(src: str) -> bool:
    """True for `owner/name` (not a URL, not a path with more parts)."""
    return SPACE_ID_RE.match(src) is not None


def page_url(endpoint: str | None, space_id: str) -> str:
    """The Space's page on the Hub (`endpoint` None: huggingface_hub's configured one)."""
    from huggingface_hub import HfApi

    return f"{(endpoint or HfApi().endpoint).rstrip('/')}/spaces/{space_id}"


def hub_api(endpoint: str | None, token: str | None) -> HfApi:
    from huggingface_hub import HfApi

    # token=False: anonymous for real; None would make huggingface_hub pick up a saved token.
    return HfApi(endpoint=endpoint, token=token or False)


def check_space_id(space_id: str) -> None:
    if not looks_like_space_id(space_id):
        raise SpaceError(
            f"{space_id!r} is not a Space id; expected 'owner/name'.", space_id=space_id
        )


async def call_hub(
    api: HfApi,
    space_id: str,
    fn: Callable[..., T],
    *args: Any,
    missing_ok: bool = False,
    **kwargs: Any,
) -> T:
    """Run one blocking huggingface_hub call in a thread, with our errors and a timeout.

    With `missing_ok`, a missing repo gives None (typed as T for the callers' convenience).
    """
    import httpx2
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    from .translate import CALL_TIMEOUT, translate_hub_error

    try:
        with anyio.fail_after(CALL_TIMEOUT):
            return await anyio.to_thread.run_sync(
                partial(fn, *args, **kwargs), abandon_on_cancel=True
            )
    except RepositoryNotFoundError as exc:
        if missing_ok:
            return cast(T, None)
        raise translate_hub_error(exc, api, space_id) from exc
    # OSError covers HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled and
    # TimeoutError; httpx2 is the HTTP client huggingface_hub 2.x is built on.
    except (OSError, httpx2.TransportError, HFValidationError) as exc:
        raise translate_hub_error(exc, api, space_id) from exc
