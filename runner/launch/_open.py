"""From the manifest's `app.replicas` to connected replicas: URLs, Space ids, duplicated
Spaces and local copies of an app script, each opened on an exit stack that closes
(and stops local processes) however the run ends."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import AsyncClient, hf_token_from_env

from ..manifest import DuplicateReplica, LocalReplica, Manifest, SpaceReplica, UrlReplica
from ..scheduling import AdaptiveLimit, Replica
from ._fleet import Fleet
from ._open_local import open_local

__all__ = ["open_replicas"]


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
    """Connect to every replica of `manifest`, starting local ones. Raises the first
    `JobsError` / `RunnerError` met (the stack then closes what was opened, and `fleet`
    pauses the paid copies it made). `work_dir` (the run folder) keeps the commit of
    each Space run locally, for a resume."""
    token = manifest.app.hf_token.reveal() if manifest.app.hf_token is not None else None
    if fleet is None:
        fleet = Fleet(token=hf_token_from_env(token), endpoint=hub_endpoint, on_message=on_message)
    stack.push_async_callback(fleet.release)
    options: dict[str, Any] = {
        "hf_token": token,
        "download_files": download_files,
        "hub_endpoint": hub_endpoint,
        "on_space_stage": None,
        "limits": manifest.app.limits,
    }
    replicas: list[Replica] = []
    next_local = 1  # local copies are numbered across every local: entry
    for spec in manifest.app.replicas:
        concurrency = spec.concurrency or manifest.run.concurrency
        if isinstance(spec, UrlReplica):
            client = await _enter(stack, await AsyncClient.connect(spec.url, **options))
            replica = _replica(spec.url, client, concurrency)
            replica.account = fleet.account_of_url(spec.url)
            replicas.append(replica)
        elif isinstance(spec, SpaceReplica):
            on_message(f"connecting to Space {spec.space}")
            reporter = _stage_reporter(spec.space, on_message)
            client = await _enter(
                stack,
                await fleet.open_space(
                    spec.space, spec.space, {**options, "on_space_stage": reporter}
                ),
            )
            replica = _replica(spec.space, client, concurrency)
            replica.account, replica.stage = fleet.account, fleet.stage_reader(spec.space)
            replicas.append(replica)
        elif isinstance(spec, DuplicateReplica):
            replicas.extend(await _duplicates(spec, stack, options, concurrency, fleet))
        elif isinstance(spec, LocalReplica):
            started = await open_local(
                spec,
                stack,
                options=options,
                concurrency=concurrency,
                log_dir=log_dir,
                work_dir=work_dir,
                first_index=next_local,
                on_message=on_message,
            )
            next_local += len(started)
            replicas.extend(started)
        else:  # pragma: no cover - the manifest parser admits no other kind
            raise TypeError(f"unknown replica kind {spec!r}")
    return replicas


async def _duplicates(
    spec: DuplicateReplica,
    stack: contextlib.AsyncExitStack,
    options: dict[str, Any],
    concurrency: int,
    fleet: Fleet,
) -> list[Replica]:
    name = spec.to_id or spec.space.split("/", 1)[1]
    out = []
    for index in range(spec.count):
        # Distinct names for the copies: name, name-2, name-3, ...
        target = name if index == 0 else f"{name}-{index + 1}"
        fleet.on_message(f"duplicating {spec.space} as {target} (or attaching to it)")
        reporter = _stage_reporter(target, fleet.on_message)
        replica_name = f"duplicate:{target}"
        client = await _enter(
            stack,
            await fleet.open_duplicate(
                replica_name, spec, target, {**options, "on_space_stage": reporter}
            ),
        )
        replica = _replica(replica_name, client, concurrency)
        replica.account = fleet.account
        replica.stage = fleet.stage_reader(fleet.space_of(replica_name))
        out.append(replica)
    return out


async def _enter(stack: contextlib.AsyncExitStack, client: AsyncClient) -> AsyncClient:
    stack.push_async_callback(client.aclose)
    return client


def _replica(name: str, client: AsyncClient, concurrency: int, revive: Any = None) -> Replica:
    return Replica(
        name=name, client=client, limit=AdaptiveLimit(maximum=concurrency), revive=revive
    )


def _stage_reporter(name: str, on_message: Callable[[str], None]) -> Callable[[str], None]:
    return lambda stage: on_message(f"{name}: {stage}")
