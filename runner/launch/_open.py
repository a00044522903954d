"""From the manifest's `app.replicas` to replicas the pool can connect: URLs, Space ids,
duplicated Spaces, local copies of an app script and copies in Ray actors.

Nothing is contacted here except to start local and Ray copies (on an exit stack that
stops them however the run ends): each replica carries how to connect to it, and the pool
connects them all at once when the run starts, then again each time it probes one
that did not answer. So a replica that is down at start is not fatal.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from jobs import AsyncClient, ConnectionFailed

from ..manifest import (
    DuplicateReplica,
    LocalReplica,
    Manifest,
    RayReplica,
    SpaceReplica,
    UrlReplica,
)
from ..scheduling import AdaptiveLimit, Connect, Replica
from ._elastic import ElasticGroup, park, timed
from ._fleet import Fleet
from ._open_local import open_local
from ._ray import open_ray_replicas

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
    work_dir: Path | None = None,
    fleet: Fleet | None = None,
) -> list[Replica]:
    """The replicas of `manifest`, not connected yet (`Replica.open_client()` connects
    one; the caller closes what it opens). Local copies are started and waited for;
    raises `LocalAppError` if one does not start. `fleet` (made here if not given) opens
    Spaces and duplicates and pauses the paid copies it made when the stack closes;
    `work_dir` (the run folder) keeps the commit of each Space run locally, for a resume."""
    token = manifest.app.token
    if fleet is None:
        fleet = Fleet.of(token, endpoint=hub_endpoint, on_message=on_message)
    stack.push_async_callback(fleet.release)
    options: dict[str, Any] = {
        "hf_token": token,
        "download_files": download_files,
        "hub_endpoint": hub_endpoint,
        "on_space_stage": None,
        "limits": manifest.app.limits,
    }
    opening = _Opening(manifest, stack, options, fleet, log_dir, work_dir, on_message)
    replicas: list[Replica] = []
    for spec in manifest.app.replicas:
        concurrency = spec.concurrency or manifest.run.concurrency
        replicas.extend(await _OPENERS[spec.kind](spec, concurrency, opening))
    return replicas


@dataclass(slots=True)
class _Opening:
    """What every launcher is given, and the numbering of copies across entries."""

    manifest: Manifest
    stack: contextlib.AsyncExitStack
    options: dict[str, Any]
    fleet: Fleet
    log_dir: Path
    work_dir: Path | None
    on_message: Callable[[str], None]
    #: Copies are numbered across every `local:` (and every `ray:`) entry.
    next_local: int = 1
    next_ray: int = 1


async def _open_url(spec: UrlReplica, concurrency: int, opening: _Opening) -> list[Replica]:
    # No account: its hardware is unknown, so it pauses alone if it is refused.
    return [_replica(spec.url, _url(spec.url, opening.options), concurrency)]


async def _open_space(spec: SpaceReplica, concurrency: int, opening: _Opening) -> list[Replica]:
    fleet = opening.fleet
    connect = _space(spec.space, opening.options, opening.on_message, fleet)
    replica = _spending_replica(spec.space, connect, concurrency, fleet)
    replica.stage = fleet.stage_reader(spec.space)
    return [replica]


async def _open_duplicate(
    spec: DuplicateReplica, concurrency: int, opening: _Opening
) -> list[Replica]:
    return _duplicates(spec, opening.options, concurrency, opening.fleet)


async def _open_local(spec: LocalReplica, concurrency: int, opening: _Opening) -> list[Replica]:
    started = await open_local(
        spec,
        opening.stack,
        options=opening.options,
        concurrency=concurrency,
        log_dir=opening.log_dir,
        work_dir=opening.work_dir,
        first_index=opening.next_local,
        on_message=opening.on_message,
        restarts=opening.fleet.local_restarts,
    )
    opening.next_local += len(started)
    return started


async def _open_ray(spec: RayReplica, concurrency: int, opening: _Opening) -> list[Replica]:
    placed = await open_ray_replicas(
        spec,
        opening.manifest.run.ray,
        opening.stack,
        options=opening.options,
        concurrency=concurrency,
        first_index=opening.next_ray,
        on_message=opening.on_message,
    )
    opening.next_ray += len(placed)
    return placed


#: The launcher of each replica kind (`ReplicaSpec.kind`).
_OPENERS: dict[str, Callable[[Any, int, _Opening], Awaitable[list[Replica]]]] = {
    UrlReplica.kind: _open_url,
    SpaceReplica.kind: _open_space,
    DuplicateReplica.kind: _open_duplicate,
    LocalReplica.kind: _open_local,
    RayReplica.kind: _open_ray,
}


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


def _space(
    space: str, options: dict[str, Any], on_message: Callable[[str], None], fleet: Fleet
) -> Connect:
    reporter = _stage_reporter(space, on_message)
    say_once = _once(on_message)

    async def connect() -> AsyncClient:
        say_once(f"connecting to Space {space}")
        return await fleet.open_space(space, space, {**options, "on_space_stage": reporter})

    return connect


def _duplicates(
    spec: DuplicateReplica,
    options: dict[str, Any],
    concurrency: int,
    fleet: Fleet,
) -> list[Replica]:
    name = spec.to_id or spec.space.split("/", 1)[1]
    out = []
    group = None
    if spec.min_count is not None:
        group = ElasticGroup(spec=spec, minimum=spec.min_count)
        fleet.groups.append(group)
    for index in range(spec.count):
        # Distinct names for the copies: name, name-2, name-3, ...
        target = name if index == 0 else f"{name}-{index + 1}"
        replica_name = f"duplicate:{target}"
        connect = _duplicate(spec, target, replica_name, options, fleet)
        if group is not None:
            connect = timed(connect, group, fleet.clock)
        replica = _spending_replica(replica_name, connect, concurrency, fleet)
        replica.stage = _copy_stage(fleet, replica_name)
        if group is not None:
            group.replicas.append(replica)
            if index >= group.minimum:
                park(replica)
        out.append(replica)
    return out


def _duplicate(
    spec: DuplicateReplica,
    target: str,
    replica_name: str,
    options: dict[str, Any],
    fleet: Fleet,
) -> Connect:
    reporter = _stage_reporter(target, fleet.on_message)
    say_once = _once(fleet.on_message)

    async def connect() -> AsyncClient:
        say_once(f"duplicating {spec.space} as {target} (or attaching to it)")
        return await fleet.open_duplicate(
            replica_name, spec, target, {**options, "on_space_stage": reporter}
        )

    return connect


def _copy_stage(fleet: Fleet, replica_name: str) -> Callable[[], Awaitable[str]]:
    """The runtime stage of a copy, once it is made (the fleet knows its Space id then)."""

    async def stage() -> str:
        return await fleet.stage_reader(fleet.space_of(replica_name))()

    return stage


def _spending_replica(name: str, connect: Connect, concurrency: int, fleet: Fleet) -> Replica:
    """A Space replica whose account (the ZeroGPU quota it spends, see `Fleet`) is set
    each time it connects: the hardware is only known once its runtime has been read."""
    made: list[Replica] = []

    async def connect_and_place() -> AsyncClient:
        client = await connect()
        made[0].account = fleet.quota_account(name)
        return client

    replica = _replica(name, connect_and_place, concurrency)
    made.append(replica)
    return replica


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
