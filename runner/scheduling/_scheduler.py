"""The engine: submissions in, outcomes out, every replica as busy as allowed and no busier.

For each submission: wait for a replica slot (the pool) and a rate token (global), send
it, wait for the result within `timeout`, and retry what is transient (tenacity) —
possibly on another replica. Every submission taken from the iterable ends in exactly
one `Outcome` handed to `on_outcome`, which is shielded from cancellation so a result is
never half-recorded; once the run stops, no more are taken.

`stop()` is the first Ctrl-C: nothing new is sent, jobs still waiting (on spacerun, in
an app's queue, or for their next attempt) are cancelled, on their servers for those
sent, running ones get `grace` seconds, then they are cancelled too. `abort()` is the
second: everything stops at once; what was not recorded simply runs again on resume.

If every replica stays down past the pool's deadline, the run stops the same way and
`run()` raises `AllReplicasDown` once every submission has its outcome.

A job refused because the account's ZeroGPU quota is spent is not a failed attempt: the
account's replicas pause until the reset (`AccountPauses`) and the job is sent again
then. A pause past `run.max_wait` (or the budget, from outside) `halt()`s the run: it
stops as on Ctrl-C and `halted_by` says why. A 5xx from a Space replica has its stage
read again (`StageWatch`).

Once every submission has been taken, the last ones go where they end first (the pool's
`tail`), and with `hedge` a straggler may be copied onto a free replica (`Hedger`):
its outcome is the first result of the two, recorded once.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup
from tenacity import RetryCallState

from jobs import (
    AppSchema,
    AsyncClient,
    AsyncJob,
    ConnectionFailed,
    Endpoint,
    JobCancelled,
    JobsError,
    QuotaExceeded,
    Status,
    StatusUpdate,
)

from ..store import RecordStatus
from ._hedge import Copy, Hedger, drop
from ._pause import AccountPauses, RunHalted
from ._pool import AllReplicasDown, ReplicaPool
from ._replica import Replica
from ._retry import AttemptTimeout, RetryPolicy, cause_of
from ._signature import signature_of
from ._stages import StageWatch
from ._throttle import RateLimiter, Sleep

__all__ = ["Outcome", "Scheduler", "SchedulerListener", "SubmissionLike"]

log = logging.getLogger("runner")

_BATCH = 256
#: Longest wait for a server to acknowledge a cancel before we stop asking.
_CANCEL_TIMEOUT = 10.0

# A hedge copy downloads into a folder of its own inside the row's: the two jobs may
# both be writing files of the same names when one wins, and the loser's must never
# replace the winner's (the record names the winner's paths).
_COPY_FILES = "hedge-copy"


class SubmissionLike(Protocol):
    @property
    def key(self) -> str: ...
    @property
    def row(self) -> int: ...
    @property
    def inputs(self) -> Mapping[str, Any]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one submission ended, after all its attempts."""

    submission: SubmissionLike
    status: RecordStatus
    value: Any = None
    error: BaseException | None = None
    attempts: int = 0
    causes: tuple[str, ...] = ()
    replica: str | None = None
    queue_time: float | None = None
    run_time: float | None = None
    #: Wall-clock time (epoch seconds) the first attempt was sent; None if never sent.
    submitted_at: float | None = None
    finished_at: float = field(default_factory=time.time)
    #: The endpoint the last attempt was bound to (the replica's API when it was sent;
    #: its outputs are named after it); None if never sent.
    endpoint: Endpoint | None = None
    #: Which API computed it: the endpoint's signature hash and the app's gradio version.
    api: dict[str, str] | None = None
    #: A copy was sent to another replica (`run.hedge`); the app seconds the losing job
    #: cost (0 when it was still queued, so cancelled exactly).
    hedged: bool = False
    hedge_seconds: float = 0.0


class SchedulerListener(Protocol):
    """What the progress display hears from the scheduler."""

    def attempt_started(self, key: str, replica: str) -> None: ...
    def retrying(self, key: str, cause: str, delay: float) -> None: ...
    def outcome(self, outcome: Outcome) -> None: ...


@dataclass(slots=True)
class _Attempt:
    """One job sent to one replica, as its status messages tell it."""

    replica: Replica
    #: Sent beyond the replica's window, to wait in its queue.
    ahead: bool
    #: The app said it runs it.
    started: bool = False


@dataclass(slots=True)
class _Task:
    scope: anyio.CancelScope
    submission: SubmissionLike
    replica: Replica | None = None
    #: The current attempt's job; None while waiting for a slot, a token or a retry.
    job: AsyncJob | None = None
    #: Attempts actually sent to a replica.
    sent: int = 0
    #: Wall-clock time the first attempt was sent (for the report's timeline).
    first_sent: float | None = None
    #: Cancels the wait for the current attempt's result (`Scheduler.abandon`).
    abandon: anyio.CancelScope | None = None
    #: The endpoint the current attempt was bound to, and the API's identity.
    endpoint: Endpoint | None = None
    api: dict[str, str] | None = None
    #: Cancelled when a copy of this job wins (`Hedger`); None when no race is on.
    race: anyio.CancelScope | None = None
    copy: Copy | None = None
    winner: Copy | None = None
    hedged: bool = False
    hedge_seconds: float = 0.0


class Scheduler:
    """Runs submissions across a `ReplicaPool`; see the module docstring."""

    def __init__(
        self,
        pool: ReplicaPool,
        *,
        on_outcome: Callable[[Outcome], Awaitable[None] | None],
        endpoint: str | None = None,
        rate: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
        timeout: float | None = None,
        grace: float = 30.0,
        share_session: bool = False,
        download_dir: Callable[[str], Path] | None = None,
        listener: SchedulerListener | None = None,
        sleep: Sleep = anyio.sleep,
        pauses: AccountPauses | None = None,
        stages: StageWatch | None = None,
        on_log: Callable[[StatusUpdate], None] | None = None,
        hedge: bool = False,
    ) -> None:
        self.pool = pool
        self._on_outcome = on_outcome
        self._endpoint = endpoint
        self._rate = rate or RateLimiter(None)
        self._policy = policy or RetryPolicy()
        self._timeout = timeout
        self._grace = grace
        self._share_session = share_session
        self._download_dir = download_dir
        self._listener = listener
        self._sleep = sleep
        self._tasks: dict[int, _Task] = {}
        self._stopping = False
        self._stopped = anyio.Event()
        self._idle = anyio.Event()
        self._task_group: TaskGroup | None = None
        #: Per replica, its client and the session its jobs share (`share_session`).
        self._shared: dict[str, tuple[AsyncClient, AppSchema, Any]] = {}
        self._failure: AllReplicasDown | None = None
        self.pauses = pauses or AccountPauses(pool.replicas)
        self._stages = stages or StageWatch(pool)
        self._on_log = on_log
        #: Why the run stopped by itself, resumably (a long quota pause, the budget).
        self.halted_by: str | None = None
        #: Why the jobs of a replica were given up (`abandon`), by replica name.
        self._abandoned: dict[str, str] = {}
        #: The identity of each API schema jobs were bound to (by the schema's id).
        self._identities: dict[int, tuple[AppSchema, dict[str, str]]] = {}
        self._hedger = (
            Hedger(
                pool,
                submit=self._submit_copy,
                result=self._await,
                release=self._release_copy,
                stopping=lambda: self._stopping,
            )
            if hedge
            else None
        )

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    async def run(self, submissions: Iterable[SubmissionLike]) -> None:
        """Run every submission (pulled lazily) until done, stopped or aborted."""
        ahead = sum(r.pace.cap for r in self.pool.replicas)
        window = anyio.Semaphore(max(1, self.pool.capacity * 2 + ahead))
        async with anyio.create_task_group() as group:
            self._task_group = group
            group.start_soon(self._watch_stop)
            async for submission in _pull(submissions):
                if self._stopping:
                    break
                await window.acquire()
                if self._stopping:
                    window.release()
                    break
                self._idle = anyio.Event()
                group.start_soon(self._run_one, submission, window)
            self.pool.tail = True
            self.pool.notify()  # waiters look again: a slow replica may be left now
            if self._hedger is not None and not self._stopping:
                group.start_soon(self._hedger.run, group, lambda: list(self._tasks.values()))
            if self._tasks:
                await self._idle.wait()
            group.cancel_scope.cancel()
        if self._failure is not None:
            raise self._failure

    def stop(self) -> None:
        """Stop sending; cancel waiting jobs; let running ones finish within the grace."""
        if not self._stopping:
            self._stopping = True
            self._stopped.set()

    def halt(self, reason: str) -> None:
        """Stop as `stop()` does, because of `reason` (kept in `halted_by`; the first wins)."""
        if self.halted_by is None:
            self.halted_by = reason
        self.stop()

    def abort(self) -> None:
        """Stop everything now."""
        self._stopping = True
        self._stopped.set()
        if self._task_group is not None:
            self._task_group.cancel_scope.cancel()

    async def _watch_stop(self) -> None:
        await self._stopped.wait()
        waiting = (Status.STARTING, Status.JOINING_QUEUE, Status.IN_QUEUE)
        async with anyio.create_task_group() as group:
            for task in list(self._tasks.values()):
                if task.copy is not None:
                    task.copy.scope.cancel()  # a copy is only ever a spare
                job = task.job
                if job is None or job.done():
                    # Waiting for a slot, a token or its next attempt: nothing to cancel
                    # on a server.
                    task.scope.cancel()
                elif job.status().code in waiting:
                    group.start_soon(_cancel, job, False)
        with anyio.move_on_after(self._grace):
            if self._tasks:
                await self._idle.wait()
        async with anyio.create_task_group() as group:
            for task in list(self._tasks.values()):
                if task.job is not None and not task.job.done():
                    group.start_soon(_cancel, task.job, True)
        for task in list(self._tasks.values()):
            task.scope.cancel()

    async def _run_one(self, submission: SubmissionLike, window: anyio.Semaphore) -> None:
        task = _Task(scope=anyio.CancelScope(), submission=submission)
        self._tasks[id(task)] = task
        causes: list[str] = []
        status, value, error = RecordStatus.CANCELLED, None, None
        try:
            with task.scope:
                value = await self._attempts(submission, task, causes)
                status = RecordStatus.OK
        except (AllReplicasDown, AttemptTimeout, JobsError) as exc:
            status, error = self._classify(exc, causes)
        finally:
            outcome = _outcome_of(submission, task, status, value, error, causes)
            try:
                with anyio.CancelScope(shield=True):
                    await self._record(outcome)
            finally:
                del self._tasks[id(task)]
                window.release()
                if not self._tasks:
                    self._idle.set()

    async def _attempts(self, submission: SubmissionLike, task: _Task, causes: list[str]) -> Any:
        """Every attempt of one submission, spaced by the retry policy; its value."""
        tried: list[str] = []
        try:
            # Most submissions succeed at once: tenacity's bookkeeping (a good part of
            # the scheduler's CPU per job) is set up only once an attempt has failed.
            return await self._attempt(submission, task, tried, causes)
        except Exception as exc:
            first: Exception | None = exc
        retrying = self._policy.retrying(
            sleep=self._backoff,
            before_sleep=lambda state: self._note_retry(submission, state, causes),
        )
        value: Any = None
        async for attempt in retrying:
            with attempt:
                if first is not None:
                    # The policy counts the failed attempt above as its first.
                    error, first = first, None
                    raise error
                value = await self._attempt(submission, task, tried, causes)
        return value

    def _classify(
        self, exc: AllReplicasDown | AttemptTimeout | JobsError, causes: list[str]
    ) -> tuple[RecordStatus, BaseException]:
        """How a submission whose last attempt raised `exc` ended."""
        if isinstance(exc, AllReplicasDown):
            # Not the job's fault: it is recorded as cancelled and runs again on resume.
            if self._failure is None:
                self._failure = exc
                self.stop()
            return RecordStatus.CANCELLED, exc
        if isinstance(exc, JobCancelled):
            return RecordStatus.CANCELLED, exc
        causes.append(cause_of(exc))
        if isinstance(exc, AttemptTimeout):
            return RecordStatus.TIMEOUT, exc
        return RecordStatus.ERROR, exc

    async def _attempt(
        self, submission: SubmissionLike, task: _Task, tried: list[str], causes: list[str]
    ) -> Any:
        """One attempt as the retry policy counts them: a job the account's ZeroGPU quota
        refused is sent again once the quota resets, without counting as a retry (its
        cause is kept in the record all the same)."""
        while True:
            try:
                return await self._send(submission, task, tried)
            except QuotaExceeded as exc:
                assert task.replica is not None
                causes.append(cause_of(exc))
                await self._hold(task.replica, exc)

    async def _hold(self, replica: Replica, error: QuotaExceeded) -> None:
        try:
            await self.pauses.pause(replica, error)
        except RunHalted as exc:
            self.halt(exc.message)
            raise JobCancelled("the run stopped: the quota resets too late") from exc

    async def _send(self, submission: SubmissionLike, task: _Task, tried: list[str]) -> Any:
        task.job = None  # so that stop() sees this task is not on any server now
        if self._stopping:
            raise JobCancelled("the run is stopping")
        replica = await self._checked_replica(tried)
        task.replica = replica
        started = time.monotonic()
        error: BaseException | None = None
        job: AsyncJob | None = None
        attempt = _Attempt(replica, ahead=replica.in_flight > replica.limit.allowed)
        try:
            if self._stopping:
                raise JobCancelled("the run is stopping")
            job = self._submit(replica, submission, task, attempt)
            task.job = job
            task.sent += 1
            if task.first_sent is None:
                task.first_sent = time.time()
            if self._listener is not None:
                self._listener.attempt_started(submission.key, replica.name)
            value = await self._race(task, job, replica)
            if task.winner is not None:
                error = JobCancelled("a copy on another replica ended first")
            return value
        except BaseException as exc:
            error = exc
            tried.append(replica.name)
            raise
        finally:
            self._released(attempt, job, error, time.monotonic() - started)

    async def _checked_replica(self, tried: list[str]) -> Replica:
        """A replica slot and a rate token, on a replica whose API was compared with the
        run's since it last (re)connected: one that lost its connection while this job
        waited for its token is left for another."""
        token = False
        while True:
            replica = await self.pool.acquire(avoid=tried)
            if not token:
                try:
                    await self._rate.acquire()
                except BaseException:
                    self.pool.give_back(replica)
                    raise
                # Kept while the replica is checked: a slow rate must not spend a token
                # on each check (and wait a whole interval for the next).
                token = True
            if self.pool.fresh(replica):
                return replica
            self.pool.give_back(replica)

    def _released(
        self, attempt: _Attempt, job: AsyncJob | None, error: BaseException | None, took: float
    ) -> None:
        replica = attempt.replica
        if attempt.started:
            replica.pace.running -= 1
        self.pool.release(
            replica,
            error,
            busy_seconds=took,
            run_time=job.timings.run_time if job is not None else None,
            direct=not attempt.ahead,
        )
        if self._task_group is not None and self._stages.wants(replica, error):
            self._task_group.start_soon(self._stages.check, replica)

    def _submit(
        self, replica: Replica, submission: SubmissionLike, task: _Task, attempt: _Attempt
    ) -> AsyncJob:
        job, task.endpoint, task.api = self._bound(replica, submission, attempt)
        return job

    def _submit_copy(self, copy: Copy, submission: SubmissionLike) -> AsyncJob:
        copy.attempt = _Attempt(copy.replica, ahead=False)
        copy.job, copy.endpoint, copy.api = self._bound(
            copy.replica, submission, copy.attempt, files=_COPY_FILES
        )
        return copy.job

    def _release_copy(self, copy: Copy, error: BaseException | None, took: float) -> None:
        assert isinstance(copy.attempt, _Attempt)
        self._released(copy.attempt, copy.job, error, took)

    def _bound(
        self, replica: Replica, submission: SubmissionLike, attempt: _Attempt, files: str = ""
    ) -> tuple[AsyncJob, Endpoint, dict[str, str]]:
        client = replica.client
        # Bound by name to the replica's API as it is now (it may have been re-read).
        endpoint = client.endpoint(self._endpoint)
        api = self._identity(client.schema, endpoint)
        if endpoint.uses_state:
            client = self._session_for(replica, submission)
        values = endpoint.bind((), submission.inputs)
        folder = self._download_dir(submission.key) / files if self._download_dir else None
        job = client.submit_values(endpoint, values, download_to=folder)
        job.add_status_listener(functools.partial(self._on_status, attempt))
        return job, endpoint, api

    def _identity(self, schema: AppSchema, endpoint: Endpoint) -> dict[str, str]:
        found = self._identities.get(id(schema))
        if found is None or found[0] is not schema:
            identity = {"signature": signature_of(endpoint), "gradio": schema.version}
            if schema.space_id:
                identity["space"] = schema.space_id
            found = self._identities[id(schema)] = (schema, identity)
        return found[1]

    def _session_for(self, replica: Replica, submission: SubmissionLike) -> Any:
        # Each row gets a session of its own, unless the manifest asks rows to share one.
        if not self._share_session:
            # One job per session: the State lives as long as the job, no heartbeat needed.
            return replica.client.new_session(heartbeat=False)
        # A replica that moved (`Replica.move_to`) or whose API was read again (it may
        # have restarted) is another app: a session of its own.
        shared = self._shared.get(replica.name)
        client = replica.client
        if shared is None or shared[0] is not client or shared[1] is not client.schema:
            shared = self._shared[replica.name] = (client, client.schema, client.new_session())
        return shared[2]

    async def _await(self, job: AsyncJob) -> Any:
        if self._timeout is None:
            return await job.result()
        with anyio.move_on_after(self._timeout):
            return await job.result()
        with anyio.CancelScope(shield=True):
            await _cancel(job, True)
        raise AttemptTimeout(f"no result within {self._timeout:g} s; cancelled on the server")

    # -- a replica that makes no progress ------------------------------------------------

    def abandon(self, replica: Replica, reason: str) -> int:
        """Give up the jobs running on `replica` (it is stuck and about to be restarted):
        each is cancelled on it and its attempt fails as an unreachable replica does, so
        it is retried on another. Returns how many were given up."""
        count = 0
        for task in self._tasks.values():
            if task.replica is replica and task.abandon is not None:
                task.abandon.cancel()
                count += 1
        self._abandoned[replica.name] = reason
        return count

    async def _race(self, task: _Task, job: AsyncJob, replica: Replica) -> Any:
        """The job's result, or its copy's if that came first (`Hedger`): then the job
        is cancelled on its server and the task takes the copy's replica and job."""
        try:
            with anyio.CancelScope() as race:
                task.race = race
                try:
                    return await self._await_unless_abandoned(task, job, replica)
                finally:
                    task.race = None
                    if task.winner is None and self._hedger is not None:
                        self._hedger.lost(task)
        except Exception:
            if task.winner is None:
                raise
        winner = task.winner
        assert winner is not None and winner.job is not None
        await drop(job)
        task.replica, task.job, task.endpoint, task.api = (
            winner.replica,
            winner.job,
            winner.endpoint,
            winner.api,
        )
        return winner.value

    async def _await_unless_abandoned(self, task: _Task, job: AsyncJob, replica: Replica) -> Any:
        with anyio.CancelScope() as scope:
            task.abandon = scope
            try:
                return await self._await(job)
            finally:
                task.abandon = None
        with anyio.CancelScope(shield=True):
            await _cancel(job, True)
        reason = self._abandoned.get(replica.name, "given up")
        raise ConnectionFailed(f"{replica.name}: {reason}", url=None)

    async def _backoff(self, seconds: float) -> None:
        """The wait before a retry; a stop ends it (the job is then cancelled)."""
        async with anyio.create_task_group() as group:

            async def until_stopped() -> None:
                await self._stopped.wait()
                group.cancel_scope.cancel()

            group.start_soon(until_stopped)
            await self._sleep(seconds)
            group.cancel_scope.cancel()
        if self._stopping:
            raise JobCancelled("the run stopped before the next attempt")

    def _on_status(self, attempt: _Attempt, update: StatusUpdate) -> None:
        replica = attempt.replica
        if update.code is Status.LOG and self._on_log is not None:
            self._on_log(update)
        elif update.code is Status.IN_QUEUE and update.rank is not None:
            self.pool.note_queue(replica, update.rank)
        elif update.code is Status.PROCESSING and not attempt.started:
            # Our job reached the front: whatever was queued ahead of it is gone.
            self.pool.note_queue(replica, 0)
            attempt.started = True
            pace = replica.pace
            pace.running += 1
            group = self._task_group
            over = attempt.ahead and pace.running > replica.limit.allowed
            if over and pace.cap and not pace.checking and group is not None:
                # One check at a time: a start seen before another job's end is common
                # (their messages come on different streams), and a task per job is not.
                pace.checking = True
                group.start_soon(self._check_overrun, replica)

    async def _check_overrun(self, replica: Replica) -> None:
        """A job sent ahead started while our count says `allowed` others run: unless
        their ends were only late (messages of another stream, a busy loop), the app
        runs more at once than allowed, and goes on doing so."""
        pace = replica.pace
        try:
            for _ in range(3):
                await anyio.sleep(max(0.1, 2 * (pace.gap or 0.0)))
                if pace.running <= replica.limit.allowed:
                    return
        finally:
            pace.checking = False
        if pace.overrun():
            self.pool.message(
                f"{replica.name} runs more than {replica.limit.allowed} of our jobs at "
                "once (its own limit is higher): no job is queued ahead on it any more"
            )

    def _note_retry(
        self, submission: SubmissionLike, state: RetryCallState, causes: list[str]
    ) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        cause = cause_of(error) if error is not None else "unknown"
        causes.append(cause)
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.info(
            "%s: attempt %d failed (%s); retrying in %.1f s",
            submission.key,
            state.attempt_number,
            cause,
            delay,
        )
        if self._listener is not None:
            self._listener.retrying(submission.key, cause, delay)

    async def _record(self, outcome: Outcome) -> None:
        try:
            result = self._on_outcome(outcome)
            if result is not None:
                await result
        finally:
            if self._listener is not None:
                self._listener.outcome(outcome)


def _outcome_of(
    submission: SubmissionLike,
    task: _Task,
    status: RecordStatus,
    value: Any,
    error: BaseException | None,
    causes: list[str],
) -> Outcome:
    if status is RecordStatus.CANCELLED and error is None:
        error = JobCancelled("stopped before it finished")
    timings = task.job.timings if task.job is not None else None
    return Outcome(
        submission=submission,
        status=status,
        value=value,
        error=error,
        attempts=task.sent,
        causes=tuple(causes),
        replica=task.replica.name if task.replica is not None else None,
        queue_time=timings.queue_time if timings else None,
        run_time=timings.run_time if timings else None,
        submitted_at=task.first_sent,
        endpoint=task.endpoint,
        api=task.api,
        hedged=task.hedged,
        hedge_seconds=round(task.hedge_seconds, 3),
    )


async def _cancel(job: AsyncJob, force: bool) -> None:
    """Ask the job's server to drop it. A server that fails or does not answer is not
    waited for: the job's stream closes with the run anyway."""
    with anyio.move_on_after(_CANCEL_TIMEOUT):
        try:
            await job.cancel(force=force)
        except JobsError as exc:
            log.info("could not cancel %r on its server: %s", job, exc)


async def _pull(submissions: Iterable[SubmissionLike]) -> Any:
    """Iterate lazily, reading batches in a worker thread (expansion may read files)."""
    iterator: Iterator[SubmissionLike] = iter(submissions)

    def next_batch() -> list[SubmissionLike]:
        batch = []
        for item in iterator:
            batch.append(item)
            if len(batch) >= _BATCH:
                break
        return batch

    while batch := await anyio.to_thread.run_sync(next_batch):
        for item in batch:
            yield item
