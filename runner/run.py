"""`run()`: a manifest from start to summary — what `spacerun run` does.

1. Load the manifest; open (or create) its run folder, repairing a torn last line.
2. Start and connect the replicas; validate every submission against the app's API.
3. Schedule what is not done yet; record each outcome the moment it arrives.
4. Write the summary (and exports); stop local replicas however the run ended.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from ._run import EXIT_FAILED as EXIT_FAILED
from ._run import EXIT_INPUT as EXIT_INPUT
from ._run import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from ._run import EXIT_OK as EXIT_OK
from ._run import execute
from .manifest import DuplicateReplica, LocalReplica, Manifest, SpaceReplica, load_manifest
from .progress import ProgressMode
from .scheduler import Scheduler
from .targets import open_replicas
from .validate import ValidationReport, validate_submissions

__all__ = ["RunHandle", "RunOptions", "run", "run_async", "validate_manifest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """How to run, beyond the manifest (the CLI's flags)."""

    app: str | None = None
    endpoint: str | None = None
    overrides: Sequence[str] = ()
    restart: bool = False
    retry_failed: bool = True
    progress: ProgressMode = "auto"
    handle_signals: bool = True
    hub_endpoint: str | None = None
    environ: Mapping[str, str] | None = None
    command: Sequence[str] | None = None
    #: Use the run folder's validation stamp and key cache (`runner.resume`). False
    #: re-validates and re-expands every row on resume, as before the cache existed
    #: (kept for the benchmark and for tests that compare both paths).
    fast_resume: bool = True


@dataclass(slots=True)
class RunHandle:
    """Cancel a running batch from code: `handle.stop()` as a first Ctrl-C (waiting jobs
    cancelled, running ones given the grace period), `handle.abort()` as a second."""

    _scheduler: Scheduler | None = None
    _pending: list[str] = field(default_factory=list)

    @property
    def stopped(self) -> bool:
        """True once `stop()` or `abort()` was called."""
        return bool(self._pending) or (self._scheduler is not None and self._scheduler.stopping)

    def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.stop()
        else:
            self._pending.append("stop")

    def abort(self) -> None:
        if self._scheduler is not None:
            self._scheduler.abort()
        else:
            self._pending.append("abort")

    def _attach(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler
        for action in self._pending:
            getattr(scheduler, action)()


def run(
    manifest: Manifest | str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    handle: RunHandle | None = None,
) -> dict[str, Any]:
    """Run a manifest (a `Manifest`, or the path of a YAML or CSV manifest) to the end
    and return its summary (also written to `summary.json`). The summary's `exit_status`
    is what the CLI exits with: 0 all ok, 1 some rows failed, 130 interrupted."""
    return anyio.run(lambda: run_async(manifest, options, handle=handle))


async def run_async(
    manifest: Manifest | str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    handle: RunHandle | None = None,
) -> dict[str, Any]:
    options = options or RunOptions()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(
            manifest,
            app=options.app,
            endpoint=options.endpoint,
            overrides=options.overrides,
            environ=options.environ,
        )
    return await execute(manifest, options, handle or RunHandle())


async def validate_manifest(
    manifest: Manifest,
    *,
    on_message: Callable[[str], None] | None = None,
    hub_endpoint: str | None = None,
) -> ValidationReport:
    """Read the app's API from one replica (starting one local copy if that is all there
    is; a duplicate's source Space rather than a new copy) and check every submission."""
    target = manifest.app.probe_target
    if isinstance(target, DuplicateReplica):
        target = SpaceReplica(space=target.space)
    elif isinstance(target, LocalReplica):
        target = dataclasses.replace(target, count=1)
    single = dataclasses.replace(
        manifest, app=dataclasses.replace(manifest.app, replicas=(target,))
    )
    say = on_message or (lambda text: print(text, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="spacerun-validate-") as logs:
        async with contextlib.AsyncExitStack() as stack:
            replicas = await open_replicas(
                single,
                stack,
                download_files=False,
                log_dir=Path(logs),
                on_message=say,
                hub_endpoint=hub_endpoint,
            )
            schema = replicas[0].client.schema
            return await anyio.to_thread.run_sync(validate_submissions, manifest, schema)
