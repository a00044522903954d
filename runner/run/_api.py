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
from collections.abc import Callable
from pathlib import Path

import anyio

from ..errors import anticipated
from ..inputs import ValidationReport, reading_from_hub, validate_submissions
from ..launch import open_replicas
from ..manifest import Manifest, load_manifest
from ._execute import execute
from ._loop import backend_options
from ._options import RunHandle, RunOptions
from ._redact import mask_error
from ._summary import RunSummary

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

__all__ = ["run", "run_async", "validate_manifest"]


def run(
    manifest: Manifest | str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    handle: RunHandle | None = None,
) -> RunSummary:
    """Run a manifest (a `Manifest`, or the path of a YAML or CSV manifest) to the end
    and return its `RunSummary` (also written to `summary.json`). Its `exit_status` is
    what the CLI exits with: 0 all ok, 1 some rows failed, 130 interrupted."""
    return anyio.run(
        lambda: run_async(manifest, options, handle=handle), backend_options=backend_options()
    )


async def run_async(
    manifest: Manifest | str | os.PathLike[str],
    options: RunOptions | None = None,
    *,
    handle: RunHandle | None = None,
) -> RunSummary:
    """`run` for code already inside an event loop: the same manifest (a `Manifest` or a
    manifest's path), options and `RunSummary`; `handle.stop()` stops it from code as a
    Ctrl-C would. A spacerun or jobs error raised by one of the run's tasks comes out as
    itself, not in an exception group, with the manifest's secrets masked in its message."""
    options = options or RunOptions()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(
            manifest,
            app=options.app,
            endpoint=options.endpoint,
            overrides=options.overrides,
            environ=options.environ,
        )
    try:
        return await execute(manifest, options, handle or RunHandle())
    except BaseExceptionGroup as group:
        # What a task of the run raised, not the group that carried it (see `anticipated`).
        error = anticipated(group)
        if error is None:
            raise
        raise mask_error(error, manifest.redactor) from group
    except Exception as error:
        mask_error(error, manifest.redactor)  # in place: the traceback stays as it was
        raise


async def validate_manifest(
    manifest: Manifest,
    *,
    on_message: Callable[[str], None] | None = None,
    hub_endpoint: str | None = None,
) -> ValidationReport:
    """Read the app's API from one replica (starting one local or Ray copy if that is all
    there is; a duplicate's source Space rather than a new copy) and check every
    submission."""
    target = manifest.app.probe_target.for_validation()
    single = dataclasses.replace(
        manifest, app=dataclasses.replace(manifest.app, replicas=(target,))
    )
    shown = on_message or (lambda text: print(text, file=sys.stderr))

    def say(text: str) -> None:  # a local copy that fails to start shows its log's tail
        shown(manifest.redactor.mask(text))

    try:
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
                replica = replicas[0]
                if replica.connected:  # a local copy, connected once it started
                    client = replica.client
                else:
                    client = await replica.open_client()
                    stack.push_async_callback(client.aclose)
                with reading_from_hub(hub_endpoint):
                    check = validate_submissions
                    return await anyio.to_thread.run_sync(check, manifest, client.schema)
    except Exception as error:
        mask_error(error, manifest.redactor)  # a replica that did not start quotes its log
        raise
