"""Scaffolding for tests that drive a `Scheduler` and its `ReplicaPool` without a run:
gauge apps shared by a module, jobs for them, and a timeline of what happened."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest

from runner.scheduling import Outcome, Scheduler, SubmissionLike
from runner.store import RecordStatus

from .apps import RunningApp, start_apps


class ProbingScheduler(Scheduler):
    """A `Scheduler` whose pool probes while it runs: what a run does around its
    scheduling (`ReplicaPool.probing`), for tests that hold no run around it."""

    async def run(self, submissions: Iterable[SubmissionLike]) -> None:
        async with self.pool.probing():
            await super().run(submissions)


@dataclass(frozen=True, slots=True)
class Sub:
    """A submission as the scheduler sees one."""

    key: str
    row: int
    inputs: dict[str, Any]


def gauge_jobs(n: int, delay: float, prefix: str = "j") -> list[Sub]:
    """`n` jobs for a gauge app, each taking `delay` seconds on it."""
    return [Sub(f"{prefix}{i}", i, {"x": f"{prefix}{i}", "delay": delay}) for i in range(n)]


async def no_wait(seconds: float) -> None:
    """Retry backoff, skipped (the pool's own pauses still run on the real clock)."""
    await anyio.lowlevel.checkpoint()


class Timeline:
    """The scheduler's listener and outcome sink and the pool's message sink, in one
    timestamped log to assert on (`events`); `until(...)` waits for a condition on it."""

    def __init__(self) -> None:
        self.outcomes: dict[str, Outcome] = {}
        self.events: list[tuple[float, str, str, str]] = []  # (monotonic, kind, key, detail)
        self._waits: list[tuple[Callable[[], bool], anyio.Event]] = []

    def _add(self, kind: str, key: str, detail: str) -> None:
        self.events.append((time.monotonic(), kind, key, detail))
        for predicate, event in self._waits:
            if predicate():
                event.set()

    # SchedulerListener
    def attempt_started(self, key: str, replica: str) -> None:
        self._add("start", key, replica)

    def retrying(self, key: str, cause: str, delay: float) -> None:
        self._add("retry", key, cause)

    def outcome(self, outcome: Outcome) -> None:
        self._add("outcome", outcome.submission.key, outcome.replica or "")

    # on_outcome and the pool's on_message
    def on_outcome(self, outcome: Outcome) -> None:
        assert outcome.submission.key not in self.outcomes, "one outcome per submission"
        self.outcomes[outcome.submission.key] = outcome

    def message(self, text: str) -> None:
        self._add("message", "", text)

    def messages(self, contains: str) -> list[tuple[float, str]]:
        return [(t, d) for t, kind, _, d in self.events if kind == "message" and contains in d]

    def starts(self, replica: str | None = None) -> list[float]:
        return [
            t
            for t, kind, _, d in self.events
            if kind == "start" and (replica is None or d == replica)
        ]

    async def until(self, predicate: Callable[[], bool], within: float = 30) -> None:
        event = anyio.Event()
        self._waits.append((predicate, event))
        try:
            if not predicate():
                with anyio.fail_after(within):
                    await event.wait()
        finally:
            self._waits.remove((predicate, event))

    def statuses(self) -> dict[str, RecordStatus]:
        return {key: o.status for key, o in self.outcomes.items()}


async def call_json(app: RunningApp, api_name: str) -> dict[str, Any]:
    """An app's own JSON-in-a-Textbox report (gauge /stats, slow /calls)."""
    prefix = (app.config or {}).get("api_prefix", "")
    async with httpx.AsyncClient(base_url=app.url, timeout=10, trust_env=False) as http:
        answer = (await http.post(f"{prefix}/run/{api_name}", json={"data": []})).json()
    report: dict[str, Any] = json.loads(answer["data"][0])
    return report


async def server_until(check: Callable[[], Any], within: float = 20) -> None:
    """Wait for a condition on another process's counters: asking is the only way."""
    with anyio.fail_after(within):
        while not await check():  # noqa: ASYNC110 - another process: no event to await
            await anyio.sleep(0.05)


def gauge_fixtures(count: int, *, settle: bool) -> tuple[Any, Any]:
    """The fixtures `_gauge_apps` (`count` gauge apps, started once for the module) and
    `gauges` (those apps for one test; with `settle`, each running, idle and with zeroed
    counters, as a test may have killed or loaded one). Assign both in the module."""

    @pytest.fixture(scope="module", name="_gauge_apps")
    def apps() -> Iterator[list[RunningApp]]:
        started = start_apps(["gauge"] * count)
        yield started
        for app in started:
            app.stop()

    @pytest.fixture(name="gauges")
    def gauges(_gauge_apps: list[RunningApp]) -> list[RunningApp]:
        if settle:
            for app in _gauge_apps:
                if not app.is_running():
                    app.restart()
            anyio.run(_settle, _gauge_apps)
        return _gauge_apps

    return apps, gauges


async def _settle(apps: list[RunningApp]) -> None:
    for app in apps:
        # A force-cancelled sync call runs on in its thread; let it end first.
        await server_until(functools.partial(_idle, app))
        await call_json(app, "reset")


async def _idle(app: RunningApp) -> bool:
    return bool((await call_json(app, "stats"))["running"] == 0)
