"""Scaffolding for tests that drive a `Scheduler` and its `ReplicaPool` without a run."""

from __future__ import annotations

from collections.abc import Iterable

from runner.scheduling import Scheduler, SubmissionLike


class ProbingScheduler(Scheduler):
    """A `Scheduler` whose pool probes while it runs: what a run does around its
    scheduling (`ReplicaPool.probing`), for tests that hold no run around it."""

    async def run(self, submissions: Iterable[SubmissionLike]) -> None:
        async with self.pool.probing():
            await super().run(submissions)
