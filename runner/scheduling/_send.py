"""One submission's attempts: a replica slot and a rate token, the job bound and sent,
its result awaited within the timeout (or its copy's, with hedging), and what is
transient retried (tenacity), possibly on another replica. A job the account's ZeroGPU
quota refused waits for the reset (`AccountPauses`) without counting as a retry.

`Sender` holds what the attempts share; `runner.scheduling._scheduler.Scheduler` runs
the submissions through it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup
from tenacity import RetryCallState

from jobs import (
    AsyncJob,
    ConnectionFailed,
    Endpoint,
    JobCancelled,
    JobsError,
    QuotaExceeded,
    StatusUpdate,
)

from ._bind import Binder
from ._hedge import Copy, Hedger, drop
from ._outcome import Outcome, SchedulerListener, SubmissionLike
from ._pause import AccountPauses, RunHalted
from ._pool import AllReplicasDown, ReplicaPool
from ._replica import Replica
from ._retry import AttemptTimeout, RetryPolicy, cause_of
from ._stages import StageWatch
from ._status import Attempt, StatusWatch
from ._throttle import RateLimiter, Sleep

__all__ = ["Sender", "Task", "cancel"]

log = logging.getLogger("runner")

#: Longest wait for a server to acknowledge a cancel before we stop asking.
_CANCEL_TIMEOUT = 10.0

# A hedge copy downloads into a folder of its own inside the row's: the two jobs may
# both be writing files of the same names when one wins, and the loser's must never
# replace the winner's (the record names the winner's paths).
_COPY_FILES = "hedge-copy"


@dataclass(slots=True)
class Task:
    """One submission from its start to its outcome, across its attempts."""

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


class Sender:
    """The attempts of each submission; see the module docstring."""

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
        self._rate = rate or RateLimiter(None)
        self._policy = policy or RetryPolicy()
        self._timeout = timeout
        self._grace = grace
        self._listener = listener
        self._sleep = sleep
        self._tasks: dict[int, Task] = {}
        self._stopping = False
        self._stopped = anyio.Event()
        self._idle = anyio.Event()
        #: Set when a submission ends (room in the window; see `Scheduler._window`).
        self._task_ended = anyio.Event()
        self._task_group: TaskGroup | None = None
        self._failure: AllReplicasDown | None = None
        self.pauses = pauses or AccountPauses(pool.replicas)
        self._stages = stages or StageWatch(pool)
        self._status = StatusWatch(pool, on_log)
        self._binder = Binder(
            endpoint=endpoint,
            share_session=share_session,
            download_dir=download_dir,
            on_status=self._status.on_status,
        )
        #: Why the run stopped by itself, resumably (a long quota pause, the budget).
        self.halted_by: str | None = None
        #: Why the jobs of a replica were given up (`abandon`), by replica name.
        self._abandoned: dict[str, str] = {}
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

    async def _attempts(self, submission: SubmissionLike, task: Task, causes: list[str]) -> Any:
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

    async def _attempt(
        self, submission: SubmissionLike, task: Task, tried: list[str], causes: list[str]
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

    async def _send(self, submission: SubmissionLike, task: Task, tried: list[str]) -> Any:
        task.job = None  # so that stop() sees this task is not on any server now
        if self._stopping:
            raise JobCancelled("the run is stopping")
        replica = await self._checked_replica(tried)
        task.replica = replica
        started = time.monotonic()
        error: BaseException | None = None
        job: AsyncJob | None = None
        attempt = Attempt(replica, ahead=replica.in_flight > replica.limit.allowed)
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
        self, attempt: Attempt, job: AsyncJob | None, error: BaseException | None, took: float
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
        self, replica: Replica, submission: SubmissionLike, task: Task, attempt: Attempt
    ) -> AsyncJob:
        job, task.endpoint, task.api = self._binder.bound(replica, submission, attempt)
        return job

    def _submit_copy(self, copy: Copy, submission: SubmissionLike) -> AsyncJob:
        copy.attempt = Attempt(copy.replica, ahead=False)
        copy.job, copy.endpoint, copy.api = self._binder.bound(
            copy.replica, submission, copy.attempt, files=_COPY_FILES
        )
        return copy.job

    def _release_copy(self, copy: Copy, error: BaseException | None, took: float) -> None:
        assert isinstance(copy.attempt, Attempt)
        self._released(copy.attempt, copy.job, error, took)

    async def _await(self, job: AsyncJob) -> Any:
        if self._timeout is None:
            return await job.result()
        with anyio.move_on_after(self._timeout):
            return await job.result()
        with anyio.CancelScope(shield=True):
            await cancel(job, True)
        raise AttemptTimeout(f"no result within {self._timeout:g} s; cancelled on the server")

    async def _race(self, task: Task, job: AsyncJob, replica: Replica) -> Any:
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

    async def _await_unless_abandoned(self, task: Task, job: AsyncJob, replica: Replica) -> Any:
        with anyio.CancelScope() as scope:
            task.abandon = scope
            try:
                return await self._await(job)
            finally:
                task.abandon = None
        with anyio.CancelScope(shield=True):
            await cancel(job, True)
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


async def cancel(job: AsyncJob, force: bool) -> None:
    """Ask the job's server to drop it. A server that fails or does not answer is not
    waited for: the job's stream closes with the run anyway."""
    with anyio.move_on_after(_CANCEL_TIMEOUT):
        try:
            await job.cancel(force=force)
        except JobsError as exc:
            log.info("could not cancel %r on its server: %s", job, exc)
