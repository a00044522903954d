"""From the manifest's `app.replicas` to replicas the pool can connect: URLs, Space ids,
duplicated Spaces and local copies of an app script.

Nothing is contacted here except to start local copies (on an exit stack that stops
them however the run ends): each replica carries how to connect to it, and the pool
connects them all at once when the run starts, then again each time it probes one
that did not answer. So a replica that is down at start is not fatal.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from jobs import AsyncClient, ConnectionFailed

from ..manifest import DuplicateReplica, LocalReplica, Manifest, SpaceReplica, UrlReplica
from ..scheduling import AdaptiveLimit, Connect, Replica
from ._local import LocalApp, LocalApps, LocalAppSpec

__all__ = ["open_replicas"]

#: Longest wait for a server (a URL, a local copy) to give its config and API. A Space
#: has its own, longer deadline: it may be waking up or building.
CONNECT_TIMEOUT = 30.0


async def open_replicas(
    manifest: Manifest,
    stack: contextlib.AsyncExitStack,
    *,
    download_files: bool,
    log_dir: Path,
    on_message: Callable[[str], None],
    hub_endpoint: str | None = None,
) -> list[Replica]:
    """The replicas of `manifest`, not connected yet (`Replica.open_client()` connects
    one; the caller closes what it opens). Local copies are started and waited for;
    raises `LocalAppError` if one does not start."""
    token = manifest.app.hf_token.reveal() if manifest.app.hf_token is not None else None
    options: dict[str, Any] = {
        "hf_token": token,
        "download_files": download_files,
        "hub_endpoint": hub_endpoint,
        "on_space_stage": None,
    }
    replicas: list[Replica] = []
    for spec in manifest.app.replicas:
        concurrency = spec.concurrency or manifest.run.concurrency
        if isinstance(spec, UrlReplica):
            replicas.append(_replica(spec.url, _url(spec.url, options), concurrency))
        elif isinstance(spec, SpaceReplica):
            connect = _space(spec.space, options, on_message)
            replicas.append(_replica(spec.space, connect, concurrency))
        elif isinstance(spec, DuplicateReplica):
            replicas.extend(_duplicates(spec, options, concurrency, on_message))
        elif isinstance(spec, LocalReplica):
            replicas.extend(await _locals(spec, stack, options, concurrency, log_dir, on_message))
        else:  # pragma: no cover - the manifest parser admits no other kind
            raise TypeError(f"unknown replica kind {spec!r}")
    return replicas


def _url(where: str | Callable[[], str], options: dict[str, Any]) -> Connect:
    """Connects to a URL (or to where a local copy is now: a restart may move it)."""

    async def connect() -> AsyncClient:
        url = where if isinstance(where, str) else where()
        try:
            with anyio.fail_after(CONNECT_TIMEOUT):
                return await AsyncClient.connect(url, **options)
        except TimeoutError:
            raise ConnectionFailed(
                f"{url} did not give its config and API within {CONNECT_TIMEOUT:g} s", url=url
            ) from None

    return connect


def _space(space: str, options: dict[str, Any], on_message: Callable[[str], None]) -> Connect:
    reporter = _stage_reporter(space, on_message)
    say_once = _once(on_message)

    async def connect() -> AsyncClient:
        say_once(f"connecting to Space {space}")
        return await AsyncClient.connect(space, **{**options, "on_space_stage": reporter})

    return connect


def _duplicates(
    spec: DuplicateReplica,
    options: dict[str, Any],
    concurrency: int,
    on_message: Callable[[str], None],
) -> list[Replica]:
    name = spec.to_id or spec.space.split("/", 1)[1]
    out = []
    for index in range(spec.count):
        # Distinct names for the copies: name, name-2, name-3, ...
        target = name if index == 0 else f"{name}-{index + 1}"
        out.append(
            _replica(
                f"duplicate:{target}", _duplicate(spec, target, options, on_message), concurrency
            )
        )
    return out


def _duplicate(
    spec: DuplicateReplica, target: str, options: dict[str, Any], on_message: Callable[[str], None]
) -> Connect:
    reporter = _stage_reporter(target, on_message)
    say_once = _once(on_message)

    async def connect() -> AsyncClient:
        say_once(f"duplicating {spec.space} as {target} (or attaching to it)")
        return await AsyncClient.duplicate(
            spec.space,
            target,
            private=spec.private,
            hardware=spec.hardware,
            # The manifest's duration is in seconds; a Space's sleep time is in minutes.
            sleep_timeout=(
                math.ceil(spec.sleep_timeout / 60) if spec.sleep_timeout is not None else 5
            ),
            **{**options, "on_space_stage": reporter},
        )

    return connect


async def _locals(
    spec: LocalReplica,
    stack: contextlib.AsyncExitStack,
    options: dict[str, Any],
    concurrency: int,
    log_dir: Path,
    on_message: Callable[[str], None],
) -> list[Replica]:
    apps = await stack.enter_async_context(
        LocalApps(
            LocalAppSpec(
                script=spec.script,
                count=spec.count,
                python=spec.python or sys.executable,
                env=dict(spec.env),
                args=tuple(spec.args),
            ),
            log_dir=log_dir,
            on_status=on_message,
        )
    )
    out = []
    for app in apps.apps:

        async def revive(app: LocalApp = app) -> None:
            if not app.alive():
                on_message(f"restarting {spec.script.name} {app.name}")
                await app.restart()

        where = lambda app=app: app.url  # noqa: E731 - read at each connection
        out.append(_replica(app.name, _url(where, options), concurrency, revive))
    return out


def _replica(name: str, connect: Connect, concurrency: int, revive: Any = None) -> Replica:
    return Replica(
        name=name, connect=connect, limit=AdaptiveLimit(maximum=concurrency), revive=revive
    )


def _stage_reporter(name: str, on_message: Callable[[str], None]) -> Callable[[str], None]:
    """Says each new stage once, however many times the Space is connected to."""
    last: list[str] = []

    def report(stage: str) -> None:
        if last != [stage]:
            last[:] = [stage]
            on_message(f"{name}: {stage}")

    return report


def _once(on_message: Callable[[str], None]) -> Callable[[str], None]:
    """Says its first message only: a replica is connected again each time it is probed."""
    said: list[bool] = []

    def say(text: str) -> None:
        if not said:
            said.append(True)
            on_message(text)

    return say
