"""`map`, `map_async`, `map_iter`: `runner.map` in its blocking, async and streaming forms.

```python
out = runner.map(df, app="owner/space", endpoint="/predict", map={"text": "{sentence}"},
                 rate="5/s", run_dir="runs/translate")
out[["sentence", "outputs.translation", "status"]]

out = await runner.map_async(df, app=..., ...)             # inside an event loop
async with runner.map_iter(df, app=..., ...) as results:  # each result as it finishes
    async for result in results: ...
```
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import sys
import warnings
from collections.abc import AsyncIterator, Mapping
from concurrent import futures
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload

import anyio
from anyio.from_thread import start_blocking_portal
from anyio.streams.memory import MemoryObjectReceiveStream

from ..errors import anticipated
from ..inputs import iter_submissions
from ..manifest import Manifest
from ..store import ResultRecord, RunFolder
from ._api import run_async
from ._loop import backend_options
from ._map_dataset import dataset_result, input_frame, is_dataset
from ._map_request import (
    AppArg,
    MapRequest,
    MapResult,
    Rows,
    build_manifest,
    local_outputs,
    result_of,
)
from ._options import RunHandle, RunOptions
from ._progress import ProgressMode
from ._resume import read_stamp
from ._summary import RunSummary

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    import pandas as pd
    from datasets import Dataset

__all__ = ["map", "map_async", "map_iter"]

#: Shortcuts for the manifest's `run:` keys most calls set.
_RUN_SHORTCUTS = ("concurrency", "rate", "retries", "timeout")
#: How often `map`'s waiting thread looks for a Ctrl-C.
_WAKE_SECONDS = 0.1


@overload
def map(
    rows: Rows,
    *,
    app: AppArg,
    endpoint: str | None = None,
    handle: RunHandle | None = None,
    as_dataset: Literal[False] = False,
    **options: Any,
) -> pd.DataFrame: ...


@overload
def map(
    rows: Rows,
    *,
    app: AppArg,
    endpoint: str | None = None,
    handle: RunHandle | None = None,
    as_dataset: Literal[True],
    **options: Any,
) -> Dataset: ...


def map(
    rows: Rows,
    *,
    app: AppArg,
    endpoint: str | None = None,
    handle: RunHandle | None = None,
    as_dataset: bool = False,
    **options: Any,
) -> pd.DataFrame | Dataset:
    """Send every row (a DataFrame, a `datasets.Dataset` or `IterableDataset`, or an
    iterable of mappings) to `app` and return a DataFrame with one row per input row and
    matrix combination, in input order: the input columns, `outputs.<name>` (files as
    local paths), `status`, `error`, `key`. With `as_dataset=True` (needs
    spacerun[datasets]), a `datasets.Dataset` of the same columns, typed: a dataset's
    Audio/Image/Video inputs keep their feature, and audio, image and video outputs
    become such columns holding the files' bytes.

    `app`: a URL, a Space id, an app script (`.py`), one manifest replica mapping or a
    list of them. Options: `map`, `matrix`, `run` (the manifest's `run:` keys), `output`,
    `run_dir`, `name`, `hf_token`, `concurrency`, `rate`, `retries`, `timeout`,
    `restart`, `retry_failed`, `progress` (default "notebook": tqdm.auto's bar).
    Run it again with the same `run_dir` to resume: only what is missing is sent.
    Ctrl-C (a notebook's stop button) stops cleanly and returns what finished, with
    a warning; a second one stops at once. Raises what `runner.run` raises.
    """
    handle = handle or RunHandle()
    with start_blocking_portal(backend_options=backend_options()) as portal:
        future = portal.start_task_soon(
            lambda: _map_async(rows, app, endpoint, handle, as_dataset, options)
        )
        interrupts = 0
        while True:
            try:
                # Waited for in short spells: a Ctrl-C the kernel hands to another
                # thread (the portal's, a worker's) is raised here only once this thread
                # runs Python again, which an unbroken wait does when the run has ended.
                futures.wait([future], timeout=_WAKE_SECONDS)
                if future.done():
                    return future.result()
            except KeyboardInterrupt:
                # The run lives in the portal's thread; Ctrl-C reaches this one.
                interrupts += 1
                portal.call(handle.abort if interrupts > 1 else handle.stop)


@overload
async def map_async(
    rows: Rows,
    *,
    app: AppArg,
    endpoint: str | None = None,
    handle: RunHandle | None = None,
    as_dataset: Literal[False] = False,
    **options: Any,
) -> pd.DataFrame: ...


@overload
async def map_async(
    rows: Rows,
    *,
    app: AppArg,
    endpoint: str | None = None,
    handle: RunHandle | None = None,
    as_dataset: Literal[True],
    **options: Any,
) -> Dataset: ...


async def map_async(
    rows: Rows,
    *,
    app: AppArg,
    endpoint: str | None = None,
    handle: RunHandle | None = None,
    as_dataset: bool = False,
    **options: Any,
) -> pd.DataFrame | Dataset:
    """`runner.map` for code that already runs an event loop (a notebook does)."""
    return await _map_async(rows, app, endpoint, handle, as_dataset, options)


async def _map_async(
    rows: Rows,
    app: AppArg,
    endpoint: str | None,
    handle: RunHandle | None,
    as_dataset: bool,
    options: Mapping[str, Any],
) -> pd.DataFrame | Dataset:
    request, run_options = _split(app, endpoint, options)
    manifest = await anyio.to_thread.run_sync(_prepare, rows, request, run_options)
    summary = await _run(manifest, run_options, handle or RunHandle())
    table = await anyio.to_thread.run_sync(frame_of, manifest, rows)
    if summary.interrupted or summary.stopped_by:
        done = summary.total - (summary.remaining or 0) if summary.total is not None else "?"
        warnings.warn(
            f"runner.map was interrupted: {done} of {summary.total} ok; call it again with "
            f"run_dir={str(manifest.output.dir)!r} to run the rest",
            RuntimeWarning,
            stacklevel=2,
        )
    if as_dataset:
        root = Path(manifest.output.dir)
        return await anyio.to_thread.run_sync(dataset_result, table, root)
    return table


@asynccontextmanager
async def map_iter(
    rows: Rows,
    *,
    app: AppArg,
    endpoint: str | None = None,
    handle: RunHandle | None = None,
    **options: Any,
) -> AsyncIterator[MemoryObjectReceiveStream[MapResult]]:
    """Run in the background and iterate over each `MapResult` as it finishes:

        async with runner.map_iter(df, app=...) as results:
            async for result in results: ...

    Leaving the block before the end stops the run as a Ctrl-C would (waiting jobs
    cancelled, running ones given the grace period) and waits for it.
    """
    request, run_options = _split(app, endpoint, options)
    manifest = await anyio.to_thread.run_sync(_prepare, rows, request, run_options)
    handle = handle or RunHandle()
    root = Path(manifest.output.dir)
    send, receive = anyio.create_memory_object_stream[MapResult](math.inf)

    def on_record(record: ResultRecord) -> None:
        # Once the caller left the loop, results still arriving (the grace period) are
        # only recorded: nobody is reading the stream any more.
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            send.send_nowait(result_of(root, record))

    async def background() -> None:
        with send:
            await _run(manifest, dataclasses.replace(run_options, on_record=on_record), handle)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(background)
            with receive:
                try:
                    yield receive
                finally:
                    handle.stop()
    except BaseExceptionGroup as exc:
        error = anticipated(exc)
        if error is None:
            raise
        raise error from exc


def _split(
    app: AppArg, endpoint: str | None, options: Mapping[str, Any]
) -> tuple[MapRequest, RunOptions]:
    options = dict(options)
    run = dict(options.pop("run", None) or {})
    for name in _RUN_SHORTCUTS:
        if (value := options.pop(name, None)) is not None:
            run[name] = value
    progress: ProgressMode = options.pop("progress", "notebook")
    run_options = RunOptions(
        restart=bool(options.pop("restart", False)),
        retry_failed=bool(options.pop("retry_failed", True)),
        progress=progress,
        handle_signals=False,  # Ctrl-C is handled by `map` (the run may be in a thread)
    )
    fields = {f.name for f in dataclasses.fields(MapRequest)}
    unknown = sorted(set(options) - fields)
    if unknown:
        known = sorted((fields - {"app", "endpoint"}) | set(_RUN_SHORTCUTS))
        raise TypeError(f"runner.map got unknown options {unknown}; it takes {known}")
    return MapRequest(app=app, endpoint=endpoint, run=run, **options), run_options


def _prepare(rows: Rows, request: MapRequest, options: RunOptions) -> Manifest:
    if options.restart:  # set aside before the rows are written into the folder
        RunFolder.at(request.folder()).set_aside()
    return build_manifest(rows, request)


async def _run(manifest: Manifest, options: RunOptions, handle: RunHandle) -> RunSummary:
    options = dataclasses.replace(options, restart=False)  # done by `_prepare`
    return await run_async(manifest, options, handle=handle)


def frame_of(manifest: Manifest, rows: Rows) -> pd.DataFrame:
    """One row per submission of `manifest`, in order: input columns, matrix values,
    outputs, status, error, key. Rows the run did not reach have status "pending"."""
    import pandas as pd

    from ..store import load_table

    root = Path(manifest.output.dir)
    inputs = _input_frame(rows, manifest)
    stamp = read_stamp(root)
    if stamp is None:  # stopped before the rows were validated: nothing ran
        pending: pd.DataFrame = inputs.assign(status="pending", error=None, key=None)
        return pending
    subs = list(iter_submissions(manifest, stamp.app_schema()))
    out = inputs.iloc[[s.row for s in subs]].copy()
    for name in manifest.inputs.matrix:
        if name not in out.columns and all(name in s.inputs for s in subs):
            out[name] = [s.inputs[name] for s in subs]
    keys = [s.key for s in subs]
    table = load_table(root, nested="native").set_index("key").reindex(keys)
    for column in (c for c in table.columns if c.startswith("outputs.")):
        out[column] = [local_outputs(root, {"v": v})["v"] for v in table[column]]  # type: ignore[index]
    out["status"] = table["status"].fillna("pending").to_numpy()
    out["error"] = table["error_message"].to_numpy()
    out["key"] = keys
    frame: pd.DataFrame = pd.DataFrame(out)
    return frame


def _input_frame(rows: Rows, manifest: Manifest) -> pd.DataFrame:
    import pandas as pd

    if isinstance(rows, pd.DataFrame):
        given: pd.DataFrame = rows
        return given
    if is_dataset(rows):
        return input_frame(Path(manifest.output.dir))
    assert manifest.inputs.path is not None
    if manifest.inputs.path.stat().st_size == 0:
        empty: pd.DataFrame = pd.DataFrame()
        return empty
    frame: pd.DataFrame = pd.read_json(
        manifest.inputs.path, lines=True, dtype=False, convert_dates=False
    )
    return frame
