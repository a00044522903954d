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
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import anyio
import yaml

from jobs import Endpoint

from .errors import ValidationFailed
from .expand import Submission, iter_submissions
from .export import export as export_results
from .manifest import DuplicateReplica, LocalReplica, Manifest, SpaceReplica, load_manifest
from .progress import Progress, ProgressMode
from .replicas import ReplicaPool
from .results import RecordStatus, ResultRecord, ResultsStore
from .runfolder import write_summary
from .retry import RetryPolicy
from .runfolder import RunFolder
from .scheduler import Outcome, OutcomeStatus, Scheduler
from .summary import SummaryBuilder, format_summary
from .targets import open_replicas
from .throttle import RateLimiter
from .validate import ValidationReport, validate_submissions

__all__ = ["RunHandle", "RunOptions", "run", "run_async", "validate_manifest"]

EXIT_OK, EXIT_FAILED, EXIT_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


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


@dataclass(slots=True)
class RunHandle:
    """Cancel a running batch from code: `handle.stop()` as a first Ctrl-C (waiting jobs
    cancelled, running ones given the grace period), `handle.abort()` as a second."""

    _scheduler: Scheduler | None = None
    _pending: list[str] = field(default_factory=list)

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


def run(manifest: Manifest | str | os.PathLike[str], options: RunOptions | None = None,
        *, handle: RunHandle | None = None) -> dict[str, Any]:
    """Run a manifest (a `Manifest`, or the path of a YAML or CSV manifest) to the end
    and return its summary (also written to `summary.json`). The summary's `exit_status`
    is what the CLI exits with: 0 all ok, 1 some rows failed, 130 interrupted."""
    return anyio.run(lambda: run_async(manifest, options, handle=handle))


async def run_async(manifest: Manifest | str | os.PathLike[str],
                    options: RunOptions | None = None, *,
                    handle: RunHandle | None = None) -> dict[str, Any]:
    options = options or RunOptions()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest, app=options.app, endpoint=options.endpoint,
                                 overrides=options.overrides, environ=options.environ)
    return await _Run(manifest, options, handle or RunHandle()).execute()


async def validate_manifest(manifest: Manifest, *,
                            on_message: Callable[[str], None] | None = None,
                            hub_endpoint: str | None = None) -> ValidationReport:
    """Read the app's API from one replica (starting one local copy if that is all there
    is; a duplicate's source Space rather than a new copy) and check every submission."""
    target = manifest.app.probe_target
    if isinstance(target, DuplicateReplica):
        target = SpaceReplica(space=target.space)
    elif isinstance(target, LocalReplica):
        target = dataclasses.replace(target, count=1)
    single = dataclasses.replace(manifest, app=dataclasses.replace(manifest.app,
                                                                   replicas=(target,)))
    say = on_message or (lambda text: print(text, file=sys.stderr))
    with tempfile.TemporaryDirectory(prefix="spacerun-validate-") as logs:
        async with contextlib.AsyncExitStack() as stack:
            replicas = await open_replicas(single, stack, download_files=False,
                                           log_dir=Path(logs), on_message=say,
                                           hub_endpoint=hub_endpoint)
            schema = replicas[0].client.schema
            return await anyio.to_thread.run_sync(validate_submissions, manifest, schema)


class _Run:
    def __init__(self, manifest: Manifest, options: RunOptions, handle: RunHandle) -> None:
        self.manifest = manifest
        self.options = options
        self.handle = handle
        self.folder = RunFolder.at(manifest.output.dir)
        self.progress = Progress(mode=options.progress)
        self.summary = SummaryBuilder()
        self.interrupted = False
        self.in_flight_keys: set[str] = set()

    async def execute(self) -> dict[str, Any]:
        if self.options.restart:
            self._set_aside()
        self.folder.ensure()
        started = time.monotonic()
        with ResultsStore.open(self.folder.root) as store:
            self._write_manifest()
            async with contextlib.AsyncExitStack() as stack:
                replicas = await open_replicas(
                    self.manifest, stack, download_files=self.manifest.output.download_files,
                    log_dir=self.folder.root / "logs", on_message=self.progress.message,
                    hub_endpoint=self.options.hub_endpoint)
                schema = replicas[0].client.schema
                report = await anyio.to_thread.run_sync(validate_submissions, self.manifest,
                                                        schema)
                if not report.ok:
                    raise ValidationFailed(report)
                total = report.submissions
                endpoint = schema.endpoint(report.endpoint)
                pool = ReplicaPool(replicas, on_message=self.progress.message)
                scheduler = self._scheduler(pool, store, endpoint)
                self.handle._attach(scheduler)
                todo = self._todo(store, schema)
                self.progress.start(total=total)
                try:
                    async with anyio.create_task_group() as group:
                        if self.options.handle_signals:
                            group.start_soon(self._watch_signals, scheduler)
                        await scheduler.run(todo)
                        group.cancel_scope.cancel()
                finally:
                    self.progress.close()
                skipped = self.progress.skipped
                summary = self.summary.build(
                    name=self.manifest.name, run_dir=str(self.folder.root),
                    wall=time.monotonic() - started, total=total, skipped=skipped,
                    folder_counts={s.value: n for s, n in store.counts().items()},
                    replicas=replicas, interrupted=self.interrupted,
                    resume_command=self._resume_command())
        summary["exit_status"] = self._exit_status(summary)
        write_summary(self.folder.root, summary)
        for fmt in self.manifest.output.export:
            export_results(self.folder.root, fmt)  # type: ignore[arg-type]
        if self.progress.mode != "quiet":
            self.progress.message(format_summary(summary))
        return summary

    def _scheduler(self, pool: ReplicaPool, store: ResultsStore, endpoint: Endpoint
                   ) -> Scheduler:
        run_spec = self.manifest.run
        rate = run_spec.rate.per_second if run_spec.rate is not None else None

        async def on_outcome(outcome: Outcome) -> None:
            self.in_flight_keys.discard(outcome.submission.key)
            self.summary.add(outcome)
            if outcome.status is OutcomeStatus.CANCELLED and outcome.attempts == 0:
                return  # never sent: nothing to record, it simply runs on resume
            store.append(self._record(outcome, endpoint))

        return Scheduler(
            pool, on_outcome=on_outcome, endpoint=endpoint.api_name,
            rate=RateLimiter(rate),
            policy=RetryPolicy(retries=run_spec.retries,
                               retry_app_errors=run_spec.retry_app_errors,
                               retry_timeouts=run_spec.retry_timeouts),
            timeout=run_spec.timeout, grace=run_spec.grace,
            share_session=run_spec.share_session,
            download_dir=self.folder.files_dir if self.manifest.output.download_files
            else None,
            listener=self.progress,
        )

    def _todo(self, store: ResultsStore, schema: Any) -> Iterator[Submission]:
        for submission in iter_submissions(self.manifest, schema):
            status = store.status_of(submission.key)
            skip = status is RecordStatus.OK or (
                status in (RecordStatus.ERROR, RecordStatus.TIMEOUT)
                and not self.options.retry_failed)
            if skip or submission.key in self.in_flight_keys:
                # Done before, failed for good, or an identical row already on its way.
                self.progress.skip()
                continue
            self.in_flight_keys.add(submission.key)
            yield submission

    def _record(self, outcome: Outcome, endpoint: Endpoint) -> ResultRecord:
        submission = outcome.submission
        outputs = None
        if outcome.status is OutcomeStatus.OK:
            outputs = _named_outputs(endpoint, outcome.value, self._relative)
        error = outcome.error
        return ResultRecord(
            key=submission.key, row=submission.row,
            status=RecordStatus(outcome.status.value),
            inputs=dict(submission.inputs), outputs=outputs,
            error_type=None if error is None else type(error).__name__,
            error_message=None if error is None else (getattr(error, "message", None)
                                                      or str(error)),
            attempts=outcome.attempts, causes=outcome.causes, replica=outcome.replica,
            queue_time=_round(outcome.queue_time), run_time=_round(outcome.run_time),
            finished_at=datetime.fromtimestamp(outcome.finished_at, timezone.utc)
            .isoformat(timespec="milliseconds"),
        )

    def _relative(self, value: str) -> str:
        try:
            return self.folder.relative(value)
        except ValueError:
            return value

    async def _watch_signals(self, scheduler: Scheduler) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if scheduler.stopping:
                    self.progress.message("second interrupt: stopping now")
                    scheduler.abort()
                    return
                self.interrupted = True
                self.progress.message(
                    f"interrupted: cancelling queued jobs, giving running ones "
                    f"{self.manifest.run.grace:g} s (Ctrl-C again to stop at once)")
                scheduler.stop()

    def _exit_status(self, summary: dict[str, Any]) -> int:
        if self.interrupted or (self.handle._scheduler is not None
                                and self.handle._scheduler.stopping):
            return EXIT_INTERRUPTED
        return EXIT_OK if summary["complete"] else EXIT_FAILED

    def _resume_command(self) -> str:
        command = list(self.options.command or ["spacerun", "run",
                                                str(self.manifest.display_path)])
        command = [c for c in command if c != "--restart"]
        return shlex.join(command)

    def _write_manifest(self) -> None:
        text = yaml.safe_dump(self.manifest.to_dict(redact=True), sort_keys=False)
        tmp = self.folder.manifest_path.with_suffix(".yaml.tmp")
        tmp.write_text(text)
        os.replace(tmp, self.folder.manifest_path)

    def _set_aside(self) -> None:
        root = self.folder.root
        if root.exists() and any(root.iterdir()):
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            aside = root.with_name(f"{root.name}.before-{stamp}")
            root.rename(aside)
            self.progress.message(f"--restart: the previous run folder is kept as {aside}")


def _named_outputs(endpoint: Endpoint, value: Any, relative: Callable[[str], str]
                   ) -> dict[str, Any]:
    values = value if len(endpoint.returns) > 1 else (value,)
    names: list[str] = []
    for index, ret in enumerate(endpoint.returns):
        name = ret.label or f"output_{index}"
        while name in names:
            name = f"{name}_{index}"
        names.append(name)
    return {name: _relativize(v, relative) for name, v in zip(names, values, strict=False)}


def _relativize(value: Any, relative: Callable[[str], str]) -> Any:
    if isinstance(value, str) and os.path.isabs(value) and os.path.exists(value):
        return relative(value)
    if isinstance(value, list):
        return [_relativize(v, relative) for v in value]
    if isinstance(value, tuple):
        return [_relativize(v, relative) for v in value]
    if isinstance(value, dict):
        return {k: _relativize(v, relative) for k, v in value.items()}
    return value


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)

