"""Hugging Face Spaces: Space id -> URL, runtime stage, waiting until it runs, duplication.

All Hub traffic goes through huggingface_hub's `HfApi` (blocking, so every call runs in a
worker thread), built for an explicit `endpoint` (None: huggingface_hub's configured one,
i.e. `HF_ENDPOINT` as read at its import, else https://huggingface.co). Its errors are
translated into ours in one place (`translate.translate_hub_error`); no message
carries the token.

`token=None` means anonymous here: huggingface_hub would otherwise fall back to `HF_TOKEN`
or the saved login behind the caller's back. Resolve the token once with
`hf_token_from_env()` and pass it down.

    token = hf_token_from_env(explicit)
    url = await wait_until_running("owner/name", token=token, on_stage=print)
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

import anyio

from ..errors import (
    AuthError,
    SpaceError,
    SpaceNotRunning,
)
from .calls import SPACE_ID_RE, call_hub, check_space_id, hub_api, looks_like_space_id, page_url

# huggingface_hub (and `translate`, built on it) is imported inside the functions
# that call the Hub: what only reads a Space id or a host name (`is_hf_host`,
# `broken_stage_advice`, used by every run) does not pay half a second for it.
if TYPE_CHECKING:
    from huggingface_hub import HfApi, SpaceHardware

__all__ = [
    "SPACE_ID_RE",
    "SpaceRuntime",
    "broken_stage_advice",
    "duplicate_space",
    "hf_token_from_env",
    "is_hf_host",
    "looks_like_space_id",
    "space_host",
    "space_runtime",
    "wait_until_running",
]

logger = logging.getLogger(__name__)
#: The Space serves requests: go ahead.
_UP = frozenset({"RUNNING", "RUNNING_BUILDING"})
#: Asleep or stopped: only a request to the app wakes it (polling the Hub does not).
_DORMANT = frozenset({"SLEEPING", "STOPPED"})
#: Broken or gone: waiting will not help. Each with what the user can do.
_BROKEN = {
    "PAUSED": "its owner paused it; restart it from the Space's settings page, or ask the owner",
    "NO_APP_FILE": "its repository has no app file; add one (e.g. app.py) or check the id",
    "CONFIG_ERROR": "its README configuration is invalid; fix the metadata and push again",
    "BUILD_ERROR": "its build failed; read the build logs on the Space page, fix and rebuild",
    "RUNTIME_ERROR": (
        "the app crashed; read the container logs on the Space page, then restart it "
        "(or duplicate it)"
    ),
    "DELETING": "it is being deleted",
}
# Anything else (BUILDING, APP_STARTING, RUNNING_APP_STARTING, stages the Hub adds later)
# is on its way up: poll with back-off.

_FIRST_DELAY, _MAX_DELAY, _GROWTH = 1.0, 10.0, 1.5
_FREE_HARDWARE = "cpu-basic"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceRuntime:
    """What the Hub says about a Space's container. `sleep_time` is in seconds."""

    stage: str
    hardware: str | None
    requested_hardware: str | None
    sleep_time: int | None


def broken_stage_advice(stage: str) -> str | None:
    """What the user can do about a Space in `stage`, if that stage will not pass by itself
    (PAUSED, BUILD_ERROR, RUNTIME_ERROR, ...); None for stages that are up or on their way."""
    return _BROKEN.get(stage)


def is_hf_host(url: str) -> bool:
    """True only for https URLs on huggingface.co or a subdomain of hf.space (default port).

    Decides where an HF token may be sent, so it matches exact host names:
    `evil-hf.space`, `hf.space.evil.com` and `huggingface.co.evil.com` are not HF hosts.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    host = parts.hostname or ""
    if parts.scheme != "https" or port not in (None, 443):
        return False
    # One label before hf.space: Space hosts are `owner-name.hf.space`.
    label, dot, rest = host.partition(".")
    return host == "huggingface.co" or (bool(label) and dot == "." and rest == "hf.space")


def hf_token_from_env(explicit: str | None = None) -> str | None:
    """The HF token to use: `explicit`, else `HF_TOKEN`, else huggingface_hub's saved login."""
    if explicit:
        return explicit
    if env := os.environ.get("HF_TOKEN", "").strip():
        return env
    from huggingface_hub import get_token
    from huggingface_hub.errors import OIDCError

    try:
        return get_token()
    except OIDCError as exc:  # HF_OIDC_RESOURCE is set (CI) and the exchange failed
        raise AuthError(f"Could not get an HF token through OIDC: {exc}") from exc


async def space_runtime(
    space_id: str, *, token: str | None, endpoint: str | None = None
) -> SpaceRuntime:
    """The Space's runtime stage and hardware.

    Raises `SpaceNotRunning` (stage None) if the Space does not exist or is private and
    `token` cannot see it, `AuthError` for a bad token, `ConnectionFailed` if the Hub is
    unreachable.
    """
    api = hub_api(endpoint, token)
    runtime = await call_hub(api, space_id, api.get_space_runtime, space_id)
    return _runtime(runtime)


async def space_host(space_id: str, *, token: str | None, endpoint: str | None = None) -> str:
    """The Space's app URL (`https://owner-name.hf.space`), as the Hub API reports it.

    Only if the API gives no host is it derived by the documented convention.
    Raises as `space_runtime`.
    """
    api = hub_api(endpoint, token)
    info = await call_hub(api, space_id, api.space_info, space_id)
    host = getattr(info, "host", None)
    return str(host).rstrip("/") if host else _conventional_host(space_id)


async def wait_until_running(
    space_id: str,
    *,
    token: str | None,
    endpoint: str | None = None,
    deadline: float = 600,
    on_stage: Callable[[str], None] | None = None,
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    wake: Callable[[str], Awaitable[object]] | None = None,
) -> str:
    """Wait until the Space serves requests; return its host URL.

    * RUNNING, RUNNING_BUILDING: return at once.
    * BUILDING, APP_STARTING, RUNNING_APP_STARTING (and unknown stages): poll the Hub,
      1 s growing to 10 s apart, until `deadline` seconds have been spent.
    * SLEEPING, STOPPED: only a request to the app wakes the Space. With `wake`, it is
      awaited once with the host URL (it should send a request and tolerate a slow or
      failed answer), then polling goes on as above. Without `wake`, the host is returned
      at once, as gradio_client does: the caller's first request wakes it (and is slow).
    * PAUSED, NO_APP_FILE, CONFIG_ERROR, BUILD_ERROR, RUNTIME_ERROR, DELETING: raise
      `SpaceNotRunning` with the stage at once.

    Each new stage is reported through `on_stage` (first one included). The deadline
    counts the time spent sleeping plus the time spent in Hub calls, so an injected fast
    `sleep` makes it pass quickly in tests. Past it: `SpaceNotRunning(stage=last stage)`.
    Errors of `space_runtime` pass through.
    """
    wait = _Wait(space_id, token=token, endpoint=endpoint, deadline=deadline, on_stage=on_stage)
    while True:
        stage = await wait.next_stage()
        if stage in _UP or (stage in _DORMANT and wake is None):
            return await space_host(space_id, token=token, endpoint=endpoint)
        if stage in _DORMANT and not wait.woken:
            assert wake is not None
            wait.woken = True
            await wake(await space_host(space_id, token=token, endpoint=endpoint))
        wait.check_deadline(stage)
        await wait.pause(sleep)


@dataclass(slots=True)
class _Wait:
    """The state of one `wait_until_running`: time spent, the next delay, the last stage."""

    space_id: str
    token: str | None
    endpoint: str | None
    deadline: float
    on_stage: Callable[[str], None] | None
    elapsed: float = 0.0
    delay: float = _FIRST_DELAY
    last: str | None = None
    woken: bool = False

    async def next_stage(self) -> str:
        """Read the stage (time counted), report it if new, raise if it is broken."""
        started = anyio.current_time()
        runtime = await space_runtime(self.space_id, token=self.token, endpoint=self.endpoint)
        self.elapsed += anyio.current_time() - started
        stage = runtime.stage
        if stage != self.last and self.on_stage is not None:
            self.on_stage(stage)
        self.last = stage
        if stage in _BROKEN:
            raise SpaceNotRunning(
                f"Space {self.space_id} is not running (stage {stage}): {_BROKEN[stage]}.",
                url=page_url(self.endpoint, self.space_id),
                space_id=self.space_id,
                stage=stage,
            )
        return stage

    def check_deadline(self, stage: str) -> None:
        if self.elapsed >= self.deadline:
            raise SpaceNotRunning(
                f"Space {self.space_id} did not come up within {self.deadline:g} s (last stage "
                f"{stage}). Try again later, or allow a longer deadline.",
                url=page_url(self.endpoint, self.space_id),
                space_id=self.space_id,
                stage=stage,
            )

    async def pause(self, sleep: Callable[[float], Awaitable[None]]) -> None:
        pause = min(self.delay, self.deadline - self.elapsed)
        await sleep(pause)
        self.elapsed += pause
        self.delay = min(self.delay * _GROWTH, _MAX_DELAY)


async def duplicate_space(
    from_id: str,
    to_id: str | None = None,
    *,
    token: str | None,
    endpoint: str | None = None,
    private: bool = True,
    hardware: str | None = None,
    secrets: Mapping[str, str] | None = None,
    sleep_timeout: int | None = 5,
) -> str:
    """Make (or reuse) a copy of Space `from_id` in the token's account; return its id.

    The target is `to_id` if it has an owner (the token's user or one of its orgs), else
    `<token's user>/<to_id or the source's name>`.

    * New target: one duplicate request carries visibility (`private`), hardware
      (`hardware`, else the source's), `secrets`, and the sleep time (`sleep_timeout`
      minutes, only for hardware other than cpu-basic, where the Hub fixes it at 48 h).
    * Existing target (a second run): nothing is duplicated again. Secrets whose keys it
      lacks are added; keys it has keep their value (changing a secret restarts the
      Space, so it is not done on every run; a warning names the keys). Hardware is
      requested only when `hardware` is given and differs; the sleep time is set when it
      differs. Visibility is left alone.

    The copy starts building; follow it with `wait_until_running(target)`.
    Raises `AuthError` without a token or with a bad or read-only one, `SpaceNotRunning`
    if the source does not exist or is private, `SpaceError` for other refusals.
    """
    _check_duplicate_ids(from_id, to_id, token)
    api = hub_api(endpoint, token)
    source = await space_runtime(from_id, token=token, endpoint=endpoint)
    target = await _target_id(api, from_id, to_id)
    found = await call_hub(api, target, api.get_space_runtime, target, missing_ok=True)
    want_hw = hardware or source.hardware or source.requested_hardware or _FREE_HARDWARE
    sleep_s = (
        sleep_timeout * 60 if sleep_timeout is not None and want_hw != _FREE_HARDWARE else None
    )
    if found is None:
        await _create_copy(api, from_id, target, private, want_hw, sleep_s, secrets or {})
    else:
        logger.info("Reusing Space %s (a duplicate of %s)", target, from_id)
        await _update_copy(api, target, _runtime(found), hardware, sleep_s, secrets or {})
    return target


# -- steps ---------------------------------------------------------------------------


def _check_duplicate_ids(from_id: str, to_id: str | None, token: str | None) -> None:
    if not token:
        raise AuthError(
            f"Duplicating Space {from_id} needs an HF token with write access: pass token= "
            "or set HF_TOKEN (https://huggingface.co/settings/tokens)."
        )
    check_space_id(from_id)
    if to_id is not None and not looks_like_space_id(to_id if "/" in to_id else f"x/{to_id}"):
        raise SpaceError(
            f"{to_id!r} is not a Space name; expected 'name' or 'owner/name'.", space_id=to_id
        )


async def _create_copy(
    api: HfApi,
    from_id: str,
    target: str,
    private: bool,
    hardware: str,
    sleep_s: int | None,
    secrets: Mapping[str, str],
) -> None:
    """One duplicate request that carries visibility, hardware, sleep time and secrets."""
    logger.info("Duplicating Space %s to %s", from_id, target)
    await call_hub(
        api,
        target,
        api.duplicate_repo,
        from_id,
        target,
        repo_type="space",
        private=private,
        exist_ok=True,
        space_hardware=cast("SpaceHardware", hardware),
        space_sleep_time=sleep_s,
        space_secrets=[{"key": k, "value": v} for k, v in secrets.items()] or None,
    )


async def _update_copy(
    api: HfApi,
    target: str,
    existing: SpaceRuntime,
    hardware: str | None,
    sleep_s: int | None,
    secrets: Mapping[str, str],
) -> None:
    """Bring an existing copy to what is asked: missing secrets, hardware, sleep time."""
    await _add_missing_secrets(api, target, secrets)
    current_hw = existing.requested_hardware or existing.hardware
    if hardware is not None and hardware != current_hw:
        await call_hub(
            api, target, api.request_space_hardware, target, cast("SpaceHardware", hardware)
        )
        current_hw = hardware
    if sleep_s is not None and current_hw != _FREE_HARDWARE and existing.sleep_time != sleep_s:
        await call_hub(api, target, api.set_space_sleep_time, target, sleep_s)


async def _target_id(api: HfApi, from_id: str, to_id: str | None) -> str:
    if to_id is not None and "/" in to_id:
        return to_id
    name = to_id or from_id.split("/", 1)[1]
    whoami = await call_hub(api, from_id, api.whoami)
    target = f"{whoami['name']}/{name}"
    check_space_id(target)
    return target


async def _add_missing_secrets(api: HfApi, target: str, secrets: Mapping[str, str]) -> None:
    if not secrets:
        return
    present = await call_hub(api, target, api.get_space_secrets, target)
    kept = sorted(k for k in secrets if k in present)
    if kept:
        logger.warning(
            "Space %s already has the secrets %s; their values were not changed. Edit them "
            "in the Space's settings if they must change.",
            target,
            ", ".join(kept),
        )
    for key, value in secrets.items():
        if key not in present:
            await call_hub(api, target, api.add_space_secret, target, key, value)


def _runtime(raw: Any) -> SpaceRuntime:
    # huggingface_hub keeps the Hub's strings (SLEEPING is not in its SpaceStage enum);
    # unwrap an enum anyway, since str() of a str-Enum is "SpaceStage.RUNNING".
    def plain(value: Any) -> Any:
        return getattr(value, "value", value)

    return SpaceRuntime(
        stage=str(plain(raw.stage)),
        hardware=plain(raw.hardware),
        requested_hardware=plain(raw.requested_hardware),
        sleep_time=raw.sleep_time,
    )


def _conventional_host(space_id: str) -> str:
    sub = re.sub(r"[_.]", "-", space_id.replace("/", "-")).lower()
    return f"https://{sub}.hf.space"
