"""`local:` replicas: an app script, or a Space's files, started as N local copies.

For a Space (`local: owner/name`): its files are fetched (pinned in the run folder), an
environment with its requirements is made or reused, and its app file is started like
any script, with that environment's python. With `gpus`, each copy gets its own device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from jobs import AsyncClient

from ..manifest import ALL_GPUS, LocalReplica
from ..scheduling import AdaptiveLimit, Replica
from ._gpus import find_gpus
from ._local import LocalApp, LocalApps
from ._space import fetch_space
from ._spec import LocalAppSpec
from ._venv import space_environment

__all__ = ["open_local"]


async def open_local(
    spec: LocalReplica,
    stack: contextlib.AsyncExitStack,
    *,
    options: dict[str, Any],
    concurrency: int,
    log_dir: Path,
    work_dir: Path | None,
    first_index: int,
    on_message: Callable[[str], None],
    restarts: dict[str, Callable[[], Awaitable[AsyncClient]]] | None = None,
) -> list[Replica]:
    """Start the copies of `spec` (stopped when `stack` closes) and connect to each.
    `restarts` (if given) gets, by replica name, how to kill a copy and start it again
    (for one that is stuck); the caller closes the client it returns."""
    app_spec = await _app_spec(spec, options, log_dir, work_dir, first_index, on_message)
    apps = await stack.enter_async_context(
        LocalApps(app_spec, log_dir=log_dir, on_status=on_message)
    )
    out = []
    for app in apps.apps:
        client = await AsyncClient.connect(app.url, **options)
        stack.push_async_callback(client.aclose)

        async def revive(app: LocalApp = app) -> AsyncClient | None:
            if app.alive():
                return None
            on_message(f"restarting {app_spec.display} {app.name}")
            url = app.url
            await app.restart()
            # Its port was taken meanwhile: the pool moves the replica to the new one.
            return None if app.url == url else await AsyncClient.connect(app.url, **options)

        async def restart(app: LocalApp = app) -> AsyncClient:
            on_message(f"killing {app_spec.display} {app.name} and starting it again")
            await app.restart()
            return await AsyncClient.connect(app.url, **options)

        if restarts is not None:
            restarts[app.name] = restart
        out.append(
            Replica(
                name=app.name,
                client=client,
                limit=AdaptiveLimit(maximum=concurrency),
                revive=revive,
                gpu=app.gpu,
            )
        )
    return out


async def _app_spec(
    spec: LocalReplica,
    options: dict[str, Any],
    log_dir: Path,
    work_dir: Path | None,
    first_index: int,
    on_message: Callable[[str], None],
) -> LocalAppSpec:
    script, python = spec.script, spec.python
    if spec.space is not None:
        files = await fetch_space(
            spec.space,
            spec.revision,
            token=options.get("hf_token"),
            endpoint=options.get("hub_endpoint"),
            pin_dir=work_dir,
            on_status=on_message,
        )
        python = await space_environment(
            files,
            python=spec.python,
            inherit=spec.inherit_packages,
            log_path=log_dir / f"{spec.space.replace('/', '--')}-install.log",
            on_status=on_message,
        )
        script = files.app
    assert script is not None  # the manifest gives a script or a Space
    gpus: tuple[str, ...] = ()
    if spec.gpus == ALL_GPUS:
        gpus = await find_gpus(script=script, label=spec.label)
    elif isinstance(spec.gpus, tuple):
        gpus = spec.gpus
    return LocalAppSpec(
        script=script,
        count=1 if gpus else spec.count,
        python=python,
        env=dict(spec.env),
        args=tuple(spec.args),
        ready_timeout=spec.ready_timeout,
        gpus=gpus,
        per_gpu=spec.per_gpu,
        first_index=first_index,
        label=spec.label,
    )
