"""The steps of one run, in order: what `runner.run.run_async` does once the manifest
is loaded (see `runner.run` for the outline). The run holds its parts: what is left to
send and the counts of what is not (`runner.run._todo`), where outcomes go
(`runner.run._sink`), how it ends (`runner.run._ending`)."""

from __future__ import annotations

import contextlib
import itertools
import signal
import time
from collections.abc import Generator, Iterator
from dataclasses import dataclass

import anyio
from anyio.abc import TaskGroup

from jobs import AppSchema

from ..errors import ValidationFailed
from ..inputs import Submission, ValidationReport, reading_from_hub, validate_submissions
from ..launch import Fleet, open_replicas
from ..manifest import Manifest
from ..scheduling import AllReplicasDown, ReplicaPool, ReplicaState, Scheduler
from ..store import KeyCache, ResultsStore, RunFolder, schema_digest, write_manifest
from ._api_change import say_api_change
from ._budget import watch_budget
from ._elastic import ElasticControl
from ._ending import Ending
from ._live import LiveReport, LiveSources, live_state
from ._notify import Notifier
from ._options import RunHandle, RunOptions
from ._progress import Progress
from ._push_watch import PushWatch
from ._redact import masking_logs, scrub_logs
from ._resume import ValidationStamp, all_done, inputs_digest, plan, read_stamp, write_stamp
from ._sink import OutcomeSink, run_scheduler
from ._stuck import StuckWatch
from ._summary import RunSummary, SummaryBuilder
from ._todo import Todo

__all__ = ["execute"]


async def execute(manifest: Manifest, options: RunOptions, handle: RunHandle) -> RunSummary:
    """Run `manifest` to the end and return its summary, as `runner.run.run_async` does."""
    with reading_from_hub(options.hub_endpoint):  # the dataset read where the push goes
        return await _Run(manifest, options, handle).run()


@dataclass(frozen=True, slots=True)
class _Resume:
    """What the run folder's validation stamp says about this run, before any app is
    contacted: nothing (`todo` None), what is left to send, or that it is all done."""

    inputs: str | None = None
    stamp: ValidationStamp | None = None
    todo: Generator[Submission, None, None] | None = None
    finished: RunSummary | None = None


class _Prefetch:
    """The first submission left, drawn in a thread while the replicas start (skipping
    the done rows of a large resume takes a while)."""

    def __init__(self, todo: Iterator[Submission] | None, group: TaskGroup) -> None:
        self._drawn: list[Submission] = []
        self._done = anyio.Event()
        if todo is None:
            self._done.set()
        else:
            group.start_soon(self._draw, todo)

    async def _draw(self, todo: Iterator[Submission]) -> None:
        try:
            first = await anyio.to_thread.run_sync(next, todo, None)
            if first is not None:
                self._drawn.append(first)
        finally:
            self._done.set()

    async def drawn(self) -> list[Submission]:
        await self._done.wait()
        return self._drawn


class _Run:
    def __init__(self, manifest: Manifest, options: RunOptions, handle: RunHandle) -> None:
        self.manifest = manifest
        self.options = options
        self.handle = handle
        self.progress = Progress(mode=options.progress)
        self.folder = RunFolder.at(manifest.output.dir)
        self.redactor = manifest.redactor
        self.progress.mask = self.redactor.mask
        self.outcomes = SummaryBuilder(mask=self.redactor.mask)
        notify = manifest.run.notify
        self.notifier = Notifier(notify, run=manifest.name) if notify is not None else None
        self.fleet = Fleet.of(
            manifest.app.token, endpoint=options.hub_endpoint, on_message=self.progress.message
        )
        self.end: Ending | None = None
        self.pusher: PushWatch | None = None
        if manifest.output.push_to_hub is not None:
            self.pusher = PushWatch(
                manifest,
                token=self.fleet.token,
                endpoint=options.hub_endpoint,
                done=lambda: sum(self.outcomes.counts.values()),
                on_message=self.progress.message,
                secret_values=list(self.redactor.secrets.values()),
            )

    async def run(self) -> RunSummary:
        if self.options.restart and (aside := self.folder.set_aside()) is not None:
            self.progress.message(f"--restart: the previous run folder is kept as {aside}")
        self.folder.ensure()
        end = self.end = Ending(
            manifest=self.manifest,
            options=self.options,
            handle=self.handle,
            folder=self.folder,
            progress=self.progress,
            fleet=self.fleet,
            outcomes=self.outcomes,
            started=time.monotonic(),
        )
        opened = False
        try:
            with masking_logs(self.redactor), ResultsStore.open(self.folder.root) as store:
                opened = True
                write_manifest(self.folder.root, self.manifest.to_dict(redact=True))
                with Todo(self.manifest, self.options, self.progress, store) as todo:
                    return await self._run_with(store, todo, end)
        finally:
            if opened:  # not over the folder of another run that holds its lock
                scrub_logs(self.folder.logs_dir, self.redactor)  # local copies stopped
                end.report()
                if self.pusher is not None:
                    await self.pusher.push()  # however the run ended: what is done is kept
            if self.notifier is not None:
                await self.notifier.finish(end.summary)

    async def _run_with(self, store: ResultsStore, todo: Todo, end: Ending) -> RunSummary:
        resume = await self._plan_resume(store, todo, end)
        if resume.finished is not None:
            return resume.finished
        async with contextlib.AsyncExitStack() as stack, anyio.create_task_group() as background:
            first = _Prefetch(resume.todo, background)
            pool = end.pool = await self._pool(stack)
            # The pool probes (and connects late replicas) from the start to the end.
            async with pool.probing():
                schema = await self._connect(pool, store, todo, end, resume)
                source = await self._source(todo, schema, resume, await first.drawn())
                summary = await self._schedule(store, todo, end, pool, schema, *source)
        return summary

    async def _plan_resume(self, store: ResultsStore, todo: Todo, end: Ending) -> _Resume:
        """With a validation stamp for these same rows, plan from the key cache (with the
        schema they were validated against); when nothing is left, finish at once."""
        if not self.options.fast_resume:
            return _Resume()
        inputs = await anyio.to_thread.run_sync(inputs_digest, self.manifest)
        previous = read_stamp(self.folder.root)
        if previous is None or previous.inputs != inputs:
            return _Resume(inputs=inputs)
        cache = KeyCache.open(self.folder.root, previous.stamp)
        todo.use_cache(cache)
        cached_schema = previous.app_schema()
        needed = todo.needed()
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
            todo.count_done()
            finished = end.finish(store, todo.counts, total=previous.submissions, replicas=[])
            return _Resume(inputs=inputs, stamp=previous, finished=finished)
        left = todo.submissions(cached_schema, the_plan)
        return _Resume(inputs=inputs, stamp=previous, todo=left)

    async def _pool(self, stack: contextlib.AsyncExitStack) -> ReplicaPool:
        """Start the replicas (nothing is contacted but local and Ray copies), in a pool
        closed with the stack."""
        replicas = await open_replicas(
            self.manifest,
            stack,
            download_files=self.manifest.output.download_files,
            log_dir=self.folder.logs_dir,
            on_message=self.progress.message,
            hub_endpoint=self.options.hub_endpoint,
            work_dir=self.folder.root,
            fleet=self.fleet,
        )
        pool = ReplicaPool(
            replicas,
            api_name=self.manifest.app.endpoint,
            down_deadline=self.options.all_down_deadline,
            queue_ahead=self.manifest.run.queue_ahead,
            on_message=self.progress.message,
        )
        stack.push_async_callback(pool.aclose)
        return pool

    async def _connect(
        self, pool: ReplicaPool, store: ResultsStore, todo: Todo, end: Ending, resume: _Resume
    ) -> AppSchema:
        """Connect the replicas that answer (the API is the first one's). With none
        answering before the deadline, the run stops as it does when every replica goes
        down mid-run."""
        try:
            schema = await pool.open()
        except AllReplicasDown as down:
            total = resume.stamp.submissions if resume.stamp is not None else None
            end.finish(store, todo.counts, total=total, replicas=pool.replicas,
                       stopped_by=str(down))  # fmt: skip
            raise
        await self.fleet.load_prices()
        await self.fleet.report_quota(zerogpu=self.fleet.uses_zerogpu())
        return schema

    async def _source(
        self, todo: Todo, schema: AppSchema, resume: _Resume, prefetched: list[Submission]
    ) -> tuple[int, Iterator[Submission]]:
        """What to send, and how many submissions the manifest has: from the plan when the
        app's API is the one validated before, else validated again from scratch."""
        stamp, left = resume.stamp, resume.todo
        if stamp is not None and left is not None and stamp.schema_digest == schema_digest(schema):
            return stamp.submissions, itertools.chain(prefetched, left)
        previous = stamp or read_stamp(self.folder.root)
        if previous is not None:
            say_api_change(previous, schema, self.manifest.app.endpoint, self.progress.message)
        if left is not None:
            left.close()
            todo.reset()
        report = await anyio.to_thread.run_sync(validate_submissions, self.manifest, schema)
        if not report.ok:
            raise ValidationFailed(report)
        for line in report.secrets_note():
            self.progress.message(line)
        if self.options.fast_resume:
            self._stamp(todo, schema, report, resume.inputs)
        return report.submissions, todo.submissions(schema, None)

    def _stamp(
        self, todo: Todo, schema: AppSchema, report: ValidationReport, inputs: str | None
    ) -> None:
        """Write the validation stamp and start a key cache for it."""
        stamp = ValidationStamp.of(
            self.manifest,
            schema,
            endpoint=report.endpoint or "",
            rows=report.rows,
            submissions=report.submissions,
            inputs=inputs,
        )
        todo.use_cache(KeyCache.open(self.folder.root, stamp.stamp))
        write_stamp(self.folder.root, stamp)

    async def _schedule(
        self,
        store: ResultsStore,
        todo: Todo,
        end: Ending,
        pool: ReplicaPool,
        schema: AppSchema,
        total: int,
        source: Iterator[Submission],
    ) -> RunSummary:
        """Send what is left; record each outcome; summarise however it ends."""
        endpoint = schema.endpoint(self.manifest.app.endpoint)
        sink = OutcomeSink(
            store=store,
            endpoint=endpoint,
            folder=self.folder,
            redactor=self.redactor,
            summary=self.outcomes,
            notifier=self.notifier,
            on_record=self.options.on_record,
            landed=todo.landed,
        )
        scheduler = run_scheduler(
            self.manifest, pool, sink, endpoint=endpoint, fleet=self.fleet,
            progress=self.progress, folder=self.folder,
        )  # fmt: skip
        self.handle.attach(scheduler)
        self.progress.start(total=total)
        down: AllReplicasDown | None = None
        try:
            async with anyio.create_task_group() as group:
                self._follow(group, scheduler, pool, end)
                try:
                    await scheduler.run(source)
                except AllReplicasDown as exc:
                    down = exc  # every outcome is recorded; summarise, then report
                group.cancel_scope.cancel()
        finally:
            self.progress.close()
            await self.fleet.release()  # paid copies stop billing before the summary
        end.pauses, end.halted_by = scheduler.pauses, scheduler.halted_by
        summary = end.finish(store, todo.counts, total=total, replicas=pool.replicas,
                             stopped_by=str(down) if down else None)  # fmt: skip
        if down is not None:
            raise down
        return summary

    def _follow(
        self, group: TaskGroup, scheduler: Scheduler, pool: ReplicaPool, end: Ending
    ) -> None:
        """Start what watches the run as it goes: signals, progress, stuck copies, the
        elastic fleet, the budget, the live report and the notifier."""
        if self.options.handle_signals:
            group.start_soon(self._watch_signals, scheduler, end)
        group.start_soon(self.progress.tick)
        stuck = StuckWatch(pool, scheduler, self.fleet, after=self.manifest.run.stuck_after,
                           on_message=self.progress.message)  # fmt: skip
        group.start_soon(stuck.run)
        if self.fleet.groups:
            end.elastic = ElasticControl(
                self.fleet.groups,
                pool,
                self.fleet,
                backlog=lambda: self.progress.snapshot()["remaining"],
                deadline=self.manifest.run.deadline,
                budget=self.manifest.run.budget,
                on_message=self.progress.message,
                started=end.started,
            )
            group.start_soon(end.elastic.run)
        self._watch(group, scheduler, pool)
        if (budget := self.manifest.run.budget) is not None:
            grace = self.manifest.run.grace
            group.start_soon(
                lambda: watch_budget(self.fleet, scheduler, budget=budget, grace=grace)
            )

    def _watch(self, group: TaskGroup, scheduler: Scheduler, pool: ReplicaPool) -> None:
        """Start the live report and the notifier's watch, as the run's options ask."""
        if (every := self.options.live_report) is not None:
            sources = LiveSources(self.progress, pool, scheduler.pauses, self.fleet, self.outcomes)
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

    async def _watch_signals(self, scheduler: Scheduler, end: Ending) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                if scheduler.stopping:
                    self.progress.message("second interrupt: stopping now")
                    scheduler.abort()
                    return
                end.interrupted = True
                self.progress.message(
                    f"interrupted: cancelling queued jobs, giving running ones "
                    f"{self.manifest.run.grace:g} s (Ctrl-C again to stop at once)"
                )
                scheduler.stop()


def _paused(scheduler: Scheduler, pool: ReplicaPool) -> str | None:
    """Why nothing can be sent now (an account's pause, every replica down), or None."""
    if (pause := scheduler.pauses.describe()) is not None:
        return pause
    usable = [r for r in pool.replicas if r.state is not ReplicaState.REFUSED]
    if usable and not any(r.healthy for r in usable):
        return f"all {len(usable)} replicas are down"
    return None
