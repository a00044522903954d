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

import math
from collections.abc import Iterable, Iterator
from typing import Any

import anyio

from jobs import JobCancelled, JobsError, Status

from ..store import RecordStatus
from ._outcome import Outcome, SchedulerListener, SubmissionLike
from ._pool import AllReplicasDown
from ._replica import Replica
from ._retry import AttemptTimeout, cause_of
from ._send import Sender, Task, cancel

__all__ = ["Outcome", "Scheduler", "SchedulerListener", "SubmissionLike"]

_BATCH = 256
#: The most rows taken early for the tail.
_TAIL_MOST = 256


class Scheduler(Sender):
    """Runs submissions across a `ReplicaPool`; see the module docstring."""

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def _window(self) -> int:
        """Submissions taken at once: the slots and the jobs queued ahead now, as many
        again ready for a slot, and the rows the fleet finishes while its slowest
        replica runs one job (`_tail_rows`). Sized from what queue-ahead keeps now, not
        the most it may keep: each task beyond that only waits for a slot and wakes to
        look at the replicas now and then (at 150 ms round trip, 96 of them did)."""
        replicas = self.pool.replicas
        ahead = sum(r.pace.depth for r in replicas)
        return max(1, self.pool.capacity * 2 + ahead + _tail_rows(replicas))

    async def _room(self) -> None:
        """Wait until fewer submissions than the window are in flight."""
        while len(self._tasks) >= self._window() and not self._stopping:
            self._task_ended = anyio.Event()
            await self._task_ended.wait()

    async def run(self, submissions: Iterable[SubmissionLike]) -> None:
        """Run every submission (pulled lazily) until done, stopped or aborted."""
        async with anyio.create_task_group() as group:
            self._task_group = group
            self._status.group = group
            group.start_soon(self._watch_stop)
            async for submission in _pull(submissions):
                if self._stopping:
                    break
                await self._room()
                if self._stopping:
                    break
                self._idle = anyio.Event()
                task = Task(scope=anyio.CancelScope(), submission=submission)
                self._tasks[id(task)] = task  # counted in the window from now
                group.start_soon(self._run_one, task)
            self.pool.tail = True
            self.pool.notify()  # waiters look again: a slow replica may be left now
            if self._hedger is not None and not self._stopping:
                group.start_soon(self._hedger.run, group, lambda: list(self._tasks.values()))
            if self._tasks:
                await self._idle.wait()
            group.cancel_scope.cancel()
        if self._failure is not None:
            raise self._failure

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
                    group.start_soon(cancel, job, False)
        with anyio.move_on_after(self._grace):
            if self._tasks:
                await self._idle.wait()
        async with anyio.create_task_group() as group:
            for task in list(self._tasks.values()):
                if task.job is not None and not task.job.done():
                    group.start_soon(cancel, task.job, True)
        for task in list(self._tasks.values()):
            task.scope.cancel()

    async def _run_one(self, task: Task) -> None:
        submission = task.submission
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
                self._task_ended.set()
                if not self._tasks:
                    self._idle.set()

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

    async def _record(self, outcome: Outcome) -> None:
        try:
            result = self._on_outcome(outcome)
            if result is not None:
                await result
        finally:
            if self._listener is not None:
                self._listener.outcome(outcome)

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


def _tail_rows(replicas: list[Replica]) -> int:
    """Rows the replicas finish, at their measured pace, during the slowest one's run
    time beyond the fastest one's. The tail (`ReplicaPool.tail`) begins once every row
    is taken: taken that much earlier, the last rows no longer go to a slow replica
    just before it begins, to end that much after the others."""
    runs = [(r.limit.allowed, r.pace.run) for r in replicas if r.pace.run and r.healthy]
    if len(runs) < 2:
        return 0
    spread = max(run for _, run in runs) - min(run for _, run in runs)
    return min(_TAIL_MOST, math.ceil(spread * sum(allowed / run for allowed, run in runs)))


def _outcome_of(
    submission: SubmissionLike,
    task: Task,
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
