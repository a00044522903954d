"""huggingface_hub and network errors of Hub calls, translated into `jobs` errors in one
place (`translate_hub_error`). No message carries the token."""

from __future__ import annotations

from dataclasses import dataclass

from huggingface_hub import HfApi
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalTokenNotFoundError,
    RepositoryNotFoundError,
)

from .._protocol.ratelimit import retry_after
from ..errors import (
    AuthError,
    ConnectionFailed,
    JobsError,
    RateLimited,
    ServerError,
    SpaceError,
    SpaceNotRunning,
)
from .calls import page_url

__all__ = ["CALL_TIMEOUT", "translate_hub_error"]

#: huggingface_hub sends with no timeout at all; never wait longer than this for one call.
CALL_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class _Asked:
    """What a failed Hub call was about, for its error message (never the token itself)."""

    space_id: str
    hub: str
    page: str
    token: str | None


def translate_hub_error(exc: Exception, api: HfApi, space_id: str) -> JobsError:
    """The one place where huggingface_hub and network errors become `jobs` errors."""
    token = api.token if isinstance(api.token, str) else None
    asked = _Asked(space_id, api.endpoint, page_url(api.endpoint, space_id), token)
    if isinstance(exc, RepositoryNotFoundError):
        return _not_found(asked)
    if isinstance(exc, GatedRepoError):
        return AuthError(f"Space {space_id} is gated: request access on its page.", url=asked.page)
    if isinstance(exc, HfHubHTTPError):
        return _refused(exc, asked)
    return _not_answered(exc, asked)


def _not_found(asked: _Asked) -> JobsError:
    why = (
        "or your token has no access to it"
        if asked.token
        else "or it is private and needs a token: pass token= or set HF_TOKEN"
    )
    return SpaceNotRunning(
        f"Space {asked.space_id} was not found on the Hub ({asked.hub}): it does not exist, {why}.",
        url=asked.page,
        space_id=asked.space_id,
    )


def _not_answered(exc: Exception, asked: _Asked) -> JobsError:
    """Failures before the Hub answered: no token, a bad id, a timeout, no network."""
    space_id, hub = asked.space_id, asked.hub
    if isinstance(exc, LocalTokenNotFoundError):
        return AuthError(f"Space {space_id} needs an HF token: pass token= or set HF_TOKEN.")
    if isinstance(exc, HFValidationError):
        return SpaceError(f"{space_id!r} is not a valid Space id: {exc}", space_id=space_id)
    if isinstance(exc, TimeoutError):
        return ConnectionFailed(
            f"The Hugging Face Hub ({hub}) did not answer about Space {space_id} within "
            f"{CALL_TIMEOUT:g} s. Check the network and try again.",
            url=hub,
        )
    return ConnectionFailed(
        f"Could not reach the Hugging Face Hub ({hub}) for Space {space_id}: "
        f"{type(exc).__name__}. Check the network, HF_ENDPOINT and HF_HUB_OFFLINE.",
        url=hub,
    )


def _refused(exc: HfHubHTTPError, asked: _Asked) -> JobsError:
    """The Hub answered with an error status."""
    status, said = exc.response.status_code, _hub_said(exc, asked.token)
    if status == 401:
        return AuthError(
            "The Hugging Face Hub refused the HF token (401): it is invalid or expired. "
            "Create a new one at https://huggingface.co/settings/tokens and pass it as "
            f"token= or HF_TOKEN.{said}",
            url=asked.page,
        )
    if status == 403:
        return AuthError(
            f"The HF token may not do this on Space {asked.space_id} (403): it needs write "
            f"access to that account or organisation.{said}",
            url=asked.page,
        )
    if status == 429:
        return RateLimited(
            f"The Hugging Face Hub is rate limiting requests (429); wait and retry.{said}",
            url=asked.hub,
            retry_after=retry_after(exc.response.headers),
        )
    if status >= 500:
        return ServerError(
            f"The Hugging Face Hub failed ({status}); try again later.{said}",
            url=asked.hub,
            status_code=status,
        )
    return SpaceError(
        f"The Hugging Face Hub refused a request about Space {asked.space_id} ({status}).{said}",
        url=asked.page,
        space_id=asked.space_id,
    )


def _hub_said(exc: HfHubHTTPError, token: str | None) -> str:
    said = f" The Hub said: {exc.server_message.strip()}" if exc.server_message else ""
    if token:
        said = said.replace(token, "***")  # should the Hub ever echo it, it is not shown
    return said
