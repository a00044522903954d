"""The steps of one run, in order: what `runner.run.run_async` does once the manifest
is loaded (see `runner.run` for the outline)."""

from __future__ import annotations

import contextlib
import itertools
import logging
import shlex
import signal
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from jobs import AppSchema, Endpoint, JobsError, hf_token_from_env

from ..errors import ApiChanged, ValidationFailed
from ..inputs import Submission, ValidationReport, validate_submissions
from ..launch import Fleet, open_replicas
from ..manifest import Manifest
from ..scheduling import (
    AccountPauses,
    AllReplicasDown,
    Outcome,
    RateLimiter,
    Replica,
    ReplicaPool,
    ReplicaState,
    RetryPolicy,
    Scheduler,
    compare_by_name,
)
from ..store import (
    DuplicateResultError,
    KeyCache,
    RecordStatus,
    ResultsStore,
    RunFolder,
    schema_digest,
    write_manifest,
    write_summary,
)
from ._budget import watch_budget
from ._elastic import ElasticControl
from ._live import LiveReport, LiveSources, live_state
from ._notify import Notifier
from ._options import RunHandle, RunOptions
from ._outcome_record import record_of
from ._progress import Progress
from ._push_watch import PushWatch
from ._redact import masked_record, masking_logs, scrub_logs
from ._resume import (
    ValidationStamp,
    all_done,
    inputs_digest,
    plan,
    read_stamp,
    write_stamp,
)
from ._stuck import StuckWatch
from ._summary import RunSummary, SummaryBuilder, format_summary
from ._todo import Todo

__all__ = ["execute"]

log = logging.getLogger("runner")


async def execute(manifest: Manifest, options: RunOptions, handle: RunHandle) -> RunSummary:
    """Run `manifest` to the end and return its summary, as `runner.run.run_async` does."""
    return await _Run(manifest, options, handle).execute()


@dataclass(frozen=True, slots=True)
class _Resume:
    """What the run folder's validation stamp says about this run, before any app is
    contacted: nothing (`todo` None), what is left to send, or that it is all done."""

    inputs: str | None = None
    stamp: ValidationStamp | None = None
    todo: Generator[Submission, None, None] | None = None
    finished: RunSummary | None = None


class _Run(Todo):
    def __init__(self, manifest: Manifest, options: RunOptions, handle: RunHandle) -> None:
        super().__init__(manifest, options, Progress(mode=options.progress))
        self.handle = handle
        self.folder = RunFolder.at(manifest.output.dir)
        self.redactor = manifest.redactor
        self.progress.mask = self.redactor.mask
        self.summary = SummaryBuilder(mask=self.redactor.mask)
        self.interrupted = False
        self.pauses: AccountPauses | None = None
        self.elastic: ElasticControl | None = None
        self.halted_by: str | None = None
        self.ended: RunSummary | None = None
        notify = manifest.run.notify
        self.notifier = Notifier(notify, run=manifest.name) if notify is not None else None
        self.pool: ReplicaPool | None = None
        token = manifest.app.hf_token.reveal() if manifest.app.hf_token is not None else None
        self.fleet = Fleet(
            token=hf_token_from_env(token),
            endpoint=options.hub_endpoint,
            on_message=self.progress.message,
        )
        self.pusher: PushWatch | None = None
        if manifest.output.push_to_hub is not None:
            self.pusher = PushWatch(
                manifest,
                token=hf_token_from_env(token),
                endpoint=options.hub_endpoint,
                done=lambda: sum(self.summary.counts.values()),
                on_message=self.progress.message,
                secret_values=list(self.redactor.secrets.values()),
            )

    async def execute(self) -> RunSummary:
        if self.options.restart and (aside := self.folder.set_aside()) is not None:
            self.progress.message(f"--restart: the previous run folder is kept as {aside}")
        self.folder.ensure()
        started = self._started = time.monotonic()
        opened = False
        try:
            with masking_logs(self.redactor), ResultsStore.open(self.folder.root) as store:
                opened = True
                write_manifest(self.folder.root, self.manifest.to_dict(redact=True))
                self._cache = None
                try:
                    return await self._execute(store, started)
                finally:
                    if self._cache is not None:
                        self._cache.close()
        finally:
            if opened:  # not over the folder of another run that holds its lock
                scrub_logs(self.folder.root / "logs", self.redactor)  # local copies stopped
                self._report()
                if self.pusher is not None:
                    await self.pusher.push()  # however the run ended: what is done is kept
            if self.notifier is not None:
                await self.notifier.finish(self.ended)

    def _report(self) -> None:
        """Write `report.html`, however the run ended (the results file is closed by now).
        A report that cannot be written is logged, never what the run ends with."""
        from ..store import build_report  # jinja2 and plotly: loaded once a run is over

        try:
            path = build_report(self.folder.root)
        except Exception:
            log.warning("could not write the report of %s", self.folder.root, exc_info=True)
            return
        if self.progress.mode != "quiet":
            self.progress.message(f"report: {path}")

    async def _execute(self, store: ResultsStore, started: float) -> RunSummary:
        resume = await self._plan_resume(store)
        if resume.finished is not None:
            return resume.finished
        summary: RunSummary | None = None
        # The pool probes (and connects late replicas) from the start to the end.
        async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as probes:
            try:
                pool, schema, prefetched = await self._open(stack, probes, store, resume)
                total, source = await self._source(store, schema, resume, prefetched)
                summary = await self._schedule(store, started, pool, schema, total, source)
            finally:
                probes.cancel_scope.cancel()
        assert summary is not None
        return summary

    async def _plan_resume(self, store: ResultsStore) -> _Resume:
        """With a validation stamp for these same rows, plan from the key cache (with the
        schema they were validated against); when nothing is left, finish at once."""
        if not self.options.fast_resume:
            return _Resume()
        inputs = await anyio.to_thread.run_sync(inputs_digest, self.manifest)
        previous = read_stamp(self.folder.root)
        if previous is None or previous.inputs != inputs:
            return _Resume(inputs=inputs)
        cache = self._cache = KeyCache.open(self.folder.root, previous.stamp)
        cached_schema = previous.app_schema()
        needed = self._needed(store)
        retry_failed = self.options.retry_failed
        the_plan = await anyio.to_thread.run_sync(
            lambda: plan(
                self.manifest, cached_schema, cache, needed.mask, retry_failed=retry_failed
            )
        )
        if await anyio.to_thread.run_sync(
            all_done, self.manifest, previous, cache, needed, the_plan
        ):
            # Nothing to send: no replica is started, no app contacted.
            self.progress.start(total=previous.submissions)
            self.progress.close()
            self._count_done(store, cache)
            finished = self._finish(store, self._started, total=previous.submissions, replicas=[])
            return _Resume(inputs=inputs, stamp=previous, finished=finished)
        todo = self._todo(store, cached_schema, the_plan)
        return _Resume(inputs=inputs, stamp=previous, todo=todo)

    async def _open(
        self,
        stack: contextlib.AsyncExitStack,
        probes: TaskGroup,
        store: ResultsStore,
        resume: _Resume,
    ) -> tuple[ReplicaPool, AppSchema, list[Submission]]:
        """Start the replicas and connect those that answer (the API is the first one's),
        skipping the done rows meanwhile. With none answering before the deadline, the
        run stops as it does when every replica goes down mid-run."""
        prefetched: list[Submission] = []
        async with anyio.create_task_group() as group:
            if resume.todo is not None:
                group.start_soon(self._prefetch, resume.todo, prefetched)
            replicas = await open_replicas(
                self.manifest,
                stack,
                download_files=self.manifest.output.download_files,
                log_dir=self.folder.root / "logs",
                on_message=self.progress.message,
                hub_endpoint=self.options.hub_endpoint,
                work_dir=self.folder.root,
                fleet=self.fleet,
            )
            pool = ReplicaPool(
                replicas,
                api_name=self.manifest.app.endpoint,
                down_deadline=self.options.all_down_deadline,
                on_message=self.progress.message,
            )
            stack.push_async_callback(pool.aclose)
            self.pool = pool
            probes.start_soon(pool.probe_forever)
            try:
                schema = await pool.open()
            except AllReplicasDown as down:
                total = resume.stamp.submissions if resume.stamp is not None else None
                self._finish(store, self._started, total=total, replicas=pool.replicas,
                             stopped_by=str(down))  # fmt: skip
                raise
        await self.fleet.load_prices()
        await self.fleet.report_quota(zerogpu=self.fleet.uses_zerogpu())
        return pool, schema, prefetched

    async def _source(
        self,
        store: ResultsStore,
        schema: AppSchema,
        resume: _Resume,
        prefetched: list[Submission],
    ) -> tuple[int, Iterator[Submission]]:
        """What to send, and how many submissions the manifest has: from the plan when the
        app's API is the one validated before, else validated again from scratch."""
        stamp, todo = resume.stamp, resume.todo
        if stamp is not None and todo is not None and stamp.schema_digest == schema_digest(schema):
            return stamp.submissions, itertools.chain(prefetched, todo)
        previous = stamp or read_stamp(self.folder.root)
        if previous is not None:
            self._say_api_change(previous, schema)
        if todo is not None:
            todo.close()
            self._reset_counts()
        report = await anyio.to_thread.run_sync(validate_submissions, self.manifest, schema)
        if not report.ok:
            raise ValidationFailed(report)
        for line in report.secrets_note():
            self.progress.message(line)
        if self.options.fast_resume:
            self._stamp(schema, report, resume.inputs)
        return report.submissions, self._todo(store, schema, None)

    def _say_api_change(self, stamp: ValidationStamp, schema: AppSchema) -> None:
        """A resume against an app whose API is not the one validated before: say what
        changed before anything is sent. Rows that still fit by name are validated
        against it again; a change they do not fit stops the run (`ApiChanged`): the
        folder's results came from the other API."""
        try:
            before = stamp.app_schema().endpoint(self.manifest.app.endpoint)
        except (JobsError, ValueError, KeyError):
            return  # a stamp of another endpoint (or unreadable): validation decides
        change = compare_by_name(before, schema, self.manifest.app.endpoint)
        if change is None:
            return  # the endpoint is the same; something else of the app changed
        if not change.fits:
            raise ApiChanged(
                f"the app's API changed since this run folder's results were computed, in a "
                f"way its rows do not fit: {change.description}. Point the manifest at the "
                "app the run was validated against to resume, or give the new app a new "
                "run folder (output.dir, or --restart to set this one aside)"
            )
        self.progress.message(
            f"the app's API changed since the last run: {change.description}; the rows "
            "still fit it by name, and are validated against it again before anything is sent"
        )

    def _stamp(self, schema: AppSchema, report: ValidationReport, inputs: str | None) -> None:
        """Write the validation stamp and start a key cache for it."""
        stamp = ValidationStamp.of(
            self.manifest,
            schema,
            endpoint=report.endpoint or "",
            rows=report.rows,
            submissions=report.submissions,
            inputs=inputs,
        )
        if self._cache is not None:
            self._cache.close()
        self._cache = KeyCache.open(self.folder.root, stamp.stamp)
        write_stamp(self.folder.root, stamp)

    async def _schedule(
        self,
        store: ResultsStore,
        started: float,
        pool: ReplicaPool,
        schema: AppSchema,
        total: int,
        source: Iterator[Submission],
    ) -> RunSummary:
        """Send what is left; record each outcome; summarise however it ends."""
        endpoint = schema.endpoint(self.manifest.app.endpoint)
        scheduler = self._scheduler(pool, store, endpoint)
        self.handle.attach(scheduler)
        self.progress.start(total=total)
        down: AllReplicasDown | None = None
        try:
            async with anyio.create_task_group() as group:
                if self.options.handle_signals:
                    group.start_soon(self._watch_signals, scheduler)
                group.start_soon(self.progress.tick)
                self._follow_fleet(group, scheduler, pool, started)
                self._watch(group, scheduler, pool)
                if (budget := self.manifest.run.budget) is not None:
                    grace = self.manifest.run.grace
                    group.start_soon(
                        lambda: watch_budget(self.fleet, scheduler, budget=budget, grace=grace)
                    )
                try:
                    await scheduler.run(source)
                except AllReplicasDown as exc:
                    down = exc  # every outcome is recorded; summarise, then report
                group.cancel_scope.cancel()
        finally:
            self.progress.close()
            await self.fleet.release()  # paid copies stop billing before the summary
        self.pauses, self.halted_by = scheduler.pauses, scheduler.halted_by
        summary = self._finish(
            store,
            started,
            total=total,
            replicas=pool.replicas,
            stopped_by=str(down) if down else None,
        )
        if down is not None:
            raise down
        return summary

    def _follow_fleet(
        self, group: TaskGroup, scheduler: Scheduler, pool: ReplicaPool, started: float
    ) -> None:
        """Start the stuck-copy watch, and the elastic fleet's control when it has one."""
        stuck = StuckWatch(
            pool,
            scheduler,
            self.fleet,
            after=self.manifest.run.stuck_after,
            on_message=self.progress.message,
        )
        group.start_soon(stuck.run)
        if self.fleet.groups:
            self.elastic = ElasticControl(
                self.fleet.groups,
                pool,
                self.fleet,
                backlog=lambda: self.progress.snapshot()["remaining"],
                deadline=self.manifest.run.deadline,
                budget=self.manifest.run.budget,
                on_message=self.progress.message,
                started=started,
            )
            group.start_soon(self.elastic.run)

    def _watch(self, group: TaskGroup, scheduler: Scheduler, pool: ReplicaPool) -> None:
        """Start the live report and the notifier's watch, as the run's options ask."""
        if (every := self.options.live_report) is not None:
            sources = LiveSources(self.progress, pool, scheduler.pauses, self.fleet, self.summary)
            live = LiveReport(
                self.folder.root, lambda refresh: live_state(sources, refresh=refresh), every=every
            )
            group.start_soon(live.run)
        if self.pusher is not None:
            group.start_soon(self.pusher.run)
        if self.notifier is not None:
            group.start_soon(
                self.notifier.watch, lambda: _paused(scheduler, pool), lambda: scheduler.halted_by
            )

    async def _prefetch(self, todo: Iterator[Submission], out: list[Submission]) -> None:
        first = await anyio.to_thread.run_sync(next, todo, None)
        if first is not None:
            out.append(first)

    def _finish(
        self,
        store: ResultsStore,
        started: float,
        *,
        total: int | None,
        replicas: list[Replica],
        stopped_by: str | None = None,
    ) -> RunSummary:
        done = self.already_ok + self.duplicates + self.summary.counts[RecordStatus.OK.value]
        mask = self.redactor.mask
        summary = self.summary.build(
            name=self.manifest.name,
            run_dir=str(self.folder.root),
            wall=time.monotonic() - started,
            total=total,
            skipped=self.already_ok,
            done=done,
            failed_kept=self.failed_kept,
            duplicates=self.duplicates,
            folder_counts={s.value: n for s, n in store.counts().items()},
            replicas=replicas,
            interrupted=self.interrupted or self.handle.stopped or self.halted_by is not None,
            resume_command=self._resume_command(),
            stopped_by=None if stopped_by is None else mask(stopped_by),
            halted_by=None if self.halted_by is None else mask(self.halted_by),
            pauses=self.pauses.records if self.pauses is not None else (),
            costs=self.fleet.costs(),
            fleet=self.elastic.records if self.elastic is not None else (),
            api_changes=self.pool.api_changes if self.pool is not None else (),
        )
        write_summary(self.folder.root, self.redactor.mask_value(summary.to_dict()))
        self.ended = summary
        for fmt in self.manifest.output.export:
            self._export(fmt)
        if self.progress.mode != "quiet":
            self.progress.message(format_summary(summary))
        return summary

    def _export(self, fmt: str) -> None:
        if self.folder.export_is_current(fmt):
            return  # nothing new since the last export
        from ..store import export  # pandas, loaded only when a run exports

        export(self.folder.root, fmt)  # type: ignore[arg-type]

    def _scheduler(self, pool: ReplicaPool, store: ResultsStore, endpoint: Endpoint) -> Scheduler:
        run_spec = self.manifest.run
        rate = run_spec.rate.per_second if run_spec.rate is not None else None

        async def on_outcome(outcome: Outcome) -> None:
            key = outcome.submission.key
            try:
                self.summary.add(outcome)
                if self.notifier is not None:
                    self.notifier.outcome(outcome)
                if outcome.status is RecordStatus.CANCELLED and outcome.attempts == 0:
                    return  # never sent: nothing to record, it simply runs on resume
                record = masked_record(record_of(outcome, endpoint, self.folder), self.redactor)
                store.append(record)
                if self.options.on_record is not None:
                    self.options.on_record(record)
            except DuplicateResultError:
                # Cannot happen while identical rows wait for each other; never fatal.
                log.warning("%s was already recorded ok; the second result is dropped", key)
            finally:
                # Only once the record is on disk may an identical row be looked at again.
                self.in_flight_keys.discard(key)

        pauses = AccountPauses(
            pool.replicas,
            max_wait=run_spec.max_wait,
            lookups=self.fleet.quota_lookups(),
            on_message=self.progress.message,
        )
        self.progress.pause_text = pauses.describe
        return Scheduler(
            pool,
            pauses=pauses,
            on_log=self.progress.app_log,
            on_outcome=on_outcome,
            endpoint=endpoint.api_name,
            rate=RateLimiter(rate),
            policy=RetryPolicy(
                retries=run_spec.retries,
                retry_app_errors=run_spec.retry_app_errors,
                retry_timeouts=run_spec.retry_timeouts,
            ),
            timeout=run_spec.timeout,
            grace=run_spec.grace,
            share_session=run_spec.share_session,
            download_dir=self.folder.files_dir if self.manifest.output.download_files else None,
            listener=self.progress,
        )

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
                    f"{self.manifest.run.grace:g} s (Ctrl-C again to stop at once)"
                )
                scheduler.stop()

    def _resume_command(self) -> str:
        command = list(self.options.command or ["spacerun", "run", str(self.manifest.display_path)])
        command = [c for c in command if c != "--restart"]
        return shlex.join(command)


def _paused(scheduler: Scheduler, pool: ReplicaPool) -> str | None:
    """Why nothing can be sent now (an account's pause, every replica down), or None."""
    if (pause := scheduler.pauses.describe()) is not None:
        return pause
    usable = [r for r in pool.replicas if r.state is not ReplicaState.REFUSED]
    if usable and not any(r.healthy for r in usable):
        return f"all {len(usable)} replicas are down"
    return None
