"""The end-of-run summary: counts, failures grouped by cause, throughput, replicas.

`SummaryBuilder` hears every outcome as it arrives; `build()` makes the frozen
`RunSummary` that `run()` returns and `summary.json` holds (`to_dict()`).
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..errors import ExitStatus
from ..launch import ReplicaCost
from ..scheduling import Outcome, PauseRecord, Replica
from ..store import RecordStatus

__all__ = ["FailureGroup", "ReplicaSummary", "RunSummary", "SummaryBuilder", "format_summary"]

_NUMBERS = re.compile(r"\b\d+(\.\d+)?\b")


@dataclass(frozen=True, slots=True, kw_only=True)
class FailureGroup:
    """Failures with one cause (numbers in the message folded to `N`), and the first."""

    cause: str
    count: int
    #: The first failure of the group: `{"key", "row", "message"}`.
    example: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaSummary:
    """What one replica did in this run."""

    name: str
    submitted: int
    ok: int
    failed: int
    overloads: int
    ejections: int
    busy_seconds: float
    mean_run_seconds: float | None
    #: Copies of stragglers sent to it (`run.hedge`), and the app seconds the losing
    #: jobs cost on it.
    hedges: int = 0
    hedge_seconds: float = 0.0
    #: Where a local copy ran: its CUDA_VISIBLE_DEVICES (None when not given a GPU).
    gpu: str | None = None
    #: Hardware of a Space replica (None for URLs and local copies).
    hardware: str | None = None
    #: Seconds a copy of ours was up during this run, and what that cost in US dollars
    #: (None: not ours, or the price is unknown).
    up_seconds: float | None = None
    cost_usd: float | None = None
    #: What became of a copy of ours at the end ("paused", "left running", ...).
    after: str | None = None
    #: The gradio release the replica runs and the queue protocol spoken with it
    #: ("sse_v1" ... "sse_v3"); None for a replica never reached.
    gradio: str | None = None
    protocol: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """How a run ended: what `runner.run()` returns and `summary.json` holds."""

    name: str
    run_dir: str
    interrupted: bool
    #: Every submission of the manifest is ok in the run folder.
    complete: bool
    #: Submissions in the manifest (None when it could not be counted).
    total: int | None
    skipped_already_ok: int
    skipped_failed_before: int
    identical_rows: int
    #: Outcomes of this run by status: `{"ok": 8, "error": 1, "timeout": 0, "cancelled": 0}`.
    this_run: Mapping[str, int]
    #: Records in the run folder by status, over every run.
    folder: Mapping[str, int]
    remaining: int | None
    wall_seconds: float
    throughput_per_second: float | None
    failures_by_cause: tuple[FailureGroup, ...]
    replicas: tuple[ReplicaSummary, ...]
    resume_command: str | None
    #: Why the run stopped before the end, when it was not the user (e.g. all replicas down).
    stopped_by: str | None = None
    #: Why the run stopped itself, resumably: a quota pause past run.max_wait, the budget.
    halted_by: str | None = None
    #: Account-level pauses (ZeroGPU quota): reason, replicas, from, until, seconds.
    pauses: tuple[Mapping[str, Any], ...] = ()
    #: What the copies of ours cost in this run, in US dollars (None: none are paid, or
    #: their price is unknown).
    cost_usd: float | None = None
    #: The elastic fleet's decisions (start, pause, hold a copy): when, which, why, the
    #: backlog, the copies after it, projected finish and cost. Empty: no elastic copies.
    fleet: tuple[Mapping[str, Any], ...] = ()
    #: A replica that came back serving a changed API: when, which, what changed, and
    #: what was done ("re-mapped by name" or "taken out").
    api_changes: tuple[Mapping[str, Any], ...] = ()
    exit_status: ExitStatus

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as `summary.json` stores it (`stopped_by` only when set)."""
        data = dataclasses.asdict(self)
        data["exit_status"] = int(self.exit_status)
        for optional in ("stopped_by", "halted_by", "fleet"):
            if not data[optional]:
                del data[optional]
        return data


def exit_status_of(*, complete: bool, interrupted: bool, stopped_by: str | None) -> ExitStatus:
    """A run stopped by a fault failed; one stopped by the user was interrupted."""
    if stopped_by:
        return ExitStatus.FAILED
    if interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.OK if complete else ExitStatus.FAILED


@dataclass(slots=True)
class _Group:
    count: int
    example: dict[str, Any]


@dataclass(slots=True)
class _RunTimes:
    total: float = 0.0
    count: int = 0


@dataclass(slots=True)
class SummaryBuilder:
    """Collects outcomes as they arrive; `build()` makes the `RunSummary`."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: dict[str, _Group] = field(default_factory=dict)
    #: Per replica, for its mean run time: a running sum, as a list of every time would
    #: grow by 32 bytes a job (32 MB over a million rows).
    run_times: dict[str, _RunTimes] = field(default_factory=dict)
    #: Masks secrets in error messages; before numbers are folded to `N`, which could
    #: otherwise leave a secret's other characters in the cause.
    mask: Callable[[str], str] = str

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status.value] += 1
        if outcome.replica is not None and outcome.run_time is not None:
            times = self.run_times.get(outcome.replica)
            if times is None:
                times = self.run_times[outcome.replica] = _RunTimes()
            times.total += outcome.run_time
            times.count += 1
        if outcome.status in (RecordStatus.ERROR, RecordStatus.TIMEOUT):
            self._add_failure(outcome)

    def _add_failure(self, outcome: Outcome) -> None:
        error = outcome.error
        kind = "Timeout" if outcome.status is RecordStatus.TIMEOUT else type(error).__name__
        message = self.mask(getattr(error, "message", None) or str(error))
        cause = f"{kind}: {_NUMBERS.sub('N', message)[:160]}"
        group = self.failures.get(cause)
        if group is None:
            example = {"key": outcome.submission.key, "row": outcome.submission.row}
            self.failures[cause] = _Group(1, {**example, "message": message})
        else:
            group.count += 1

    def build(
        self,
        *,
        name: str,
        run_dir: str,
        wall: float,
        total: int | None,
        skipped: int,
        folder_counts: dict[str, int],
        replicas: list[Replica],
        interrupted: bool,
        resume_command: str | None,
        done: int | None = None,
        failed_kept: int = 0,
        duplicates: int = 0,
        stopped_by: str | None = None,
        halted_by: str | None = None,
        pauses: Sequence[PauseRecord] = (),
        costs: Mapping[str, ReplicaCost] | None = None,
        fleet: Sequence[Mapping[str, Any]] = (),
        api_changes: Sequence[Mapping[str, Any]] = (),
    ) -> RunSummary:
        """`done`: this manifest's submissions that are ok (the folder may also hold keys
        of rows the manifest no longer has, so its ok count can be larger)."""
        ok = self.counts[RecordStatus.OK.value]
        if done is None:
            done = folder_counts.get("ok", 0)
        left = None if total is None else max(total - done, 0)
        complete = left == 0
        return RunSummary(
            name=name,
            run_dir=run_dir,
            interrupted=interrupted,
            complete=complete,
            total=total,
            skipped_already_ok=skipped,
            skipped_failed_before=failed_kept,
            identical_rows=duplicates,
            this_run={s.value: self.counts[s.value] for s in RecordStatus},
            folder=folder_counts,
            remaining=left,
            wall_seconds=round(wall, 3),
            throughput_per_second=round(ok / wall, 3) if wall > 0 else None,
            failures_by_cause=tuple(
                FailureGroup(cause=cause, count=g.count, example=g.example)
                for cause, g in sorted(self.failures.items(), key=lambda kv: -kv[1].count)
            ),
            replicas=tuple(self._replica(r, (costs or {}).get(r.name)) for r in replicas),
            resume_command=resume_command if left else None,
            stopped_by=stopped_by,
            halted_by=halted_by,
            pauses=tuple(p.to_dict() for p in pauses),
            cost_usd=_total(costs or {}),
            fleet=tuple(fleet),
            api_changes=tuple(dict(change) for change in api_changes),
            exit_status=exit_status_of(
                complete=complete, interrupted=interrupted, stopped_by=stopped_by
            ),
        )

    def _replica(self, replica: Replica, cost: ReplicaCost | None) -> ReplicaSummary:
        times = self.run_times.get(replica.name)
        stats = replica.stats
        schema = replica.client.schema if replica.connected else None
        return ReplicaSummary(
            name=replica.name,
            submitted=stats.submitted,
            ok=stats.ok,
            failed=stats.failed,
            overloads=stats.overloads,
            ejections=stats.ejections,
            busy_seconds=round(stats.busy_seconds, 3),
            hedges=stats.hedges,
            hedge_seconds=round(stats.hedge_seconds, 3),
            mean_run_seconds=round(times.total / times.count, 4) if times else None,
            gpu=replica.gpu,
            hardware=cost.hardware if cost else None,
            up_seconds=round(cost.up_seconds, 1) if cost and cost.up_seconds is not None else None,
            cost_usd=cost.cost_usd if cost else None,
            after=cost.after if cost else None,
            gradio=schema.version if schema else None,
            protocol=schema.protocol if schema else None,
        )


def _total(costs: Mapping[str, ReplicaCost]) -> float | None:
    known = [c.cost_usd for c in costs.values() if c.cost_usd is not None]
    return round(sum(known), 6) if known else None


def format_summary(summary: RunSummary) -> str:
    """The summary as the terminal shows it."""
    lines = [_headline(summary)]
    if summary.skipped_failed_before:
        lines.append(
            f"  {summary.skipped_failed_before} failed before and were not retried "
            "(--no-retry-failed)"
        )
    if summary.total is not None:
        ok = summary.total - (summary.remaining or 0)
        lines.append(f"run folder {summary.run_dir}: {ok} of {summary.total} ok")
        if not summary.replicas and summary.this_run["ok"] == 0 and not summary.remaining:
            lines.append("  nothing left to run: no app was started or contacted")
    for group in summary.failures_by_cause[:10]:
        example = group.example
        lines.append(
            f"  {group.count} x {group.cause}  (e.g. row {example['row']}, key {example['key']})"
        )
    for pause in summary.pauses:
        lines.append(
            f"  paused: {pause['reason']} from {pause['started_at'][11:16]} until "
            f"{pause['until'][11:16]} ({timedelta(seconds=round(pause['seconds']))})"
        )
    if summary.fleet:
        starts = sum(1 for d in summary.fleet if d["action"] == "start")
        pauses = sum(1 for d in summary.fleet if d["action"] == "pause")
        most = max(d["copies"] for d in summary.fleet)
        lines.append(
            f"  elastic copies: {starts} started, {pauses} paused mid-run, at most {most} "
            "running at once (decisions in summary.json)"
        )
    for change in summary.api_changes:
        lines.append(
            f"  API changed on {change['replica']} at {change['at'][11:19]}: {change['change']} "
            f"({change['action']})"
        )
    lines.extend(_replica_line(replica) for replica in summary.replicas)
    if summary.cost_usd is not None:
        lines.append(f"  cost of the copies in this run: ${summary.cost_usd:.2f}")
    if summary.halted_by:
        lines.append(f"stopped: {summary.halted_by}")
    if summary.resume_command:
        lines.append(f"to resume: {summary.resume_command}")
    return "\n".join(lines)


def _replica_line(replica: ReplicaSummary) -> str:
    gpu = f" (GPU {replica.gpu})" if replica.gpu is not None else ""
    line = (
        f"  {replica.name}{gpu}: {replica.ok} ok, {replica.failed} failed, "
        f"{replica.overloads} overloads, {replica.ejections} ejections"
    )
    if replica.hedges:
        line += f", {replica.hedges} hedged copies"
    if replica.hedge_seconds:
        line += f", {replica.hedge_seconds:.1f} s of app time lost to hedges"
    if replica.protocol is not None:
        line += f"; gradio {replica.gradio} ({replica.protocol})"
    if replica.hardware is not None:
        line += f"; {replica.hardware}"
    if replica.up_seconds is not None:
        line += f", up {timedelta(seconds=round(replica.up_seconds))}"
    if replica.cost_usd is not None:
        line += f", ${replica.cost_usd:.2f}"
    if replica.after:
        line += f", {replica.after}"
    return line


def _headline(summary: RunSummary) -> str:
    this = summary.this_run
    line = (
        f"{summary.name}: {this['ok']} ok, {this['error']} failed, {this['timeout']} timed "
        f"out, {this['cancelled']} cancelled in {summary.wall_seconds:.1f} s"
    )
    if summary.throughput_per_second:
        line += f" ({summary.throughput_per_second:.1f}/s)"
    if summary.skipped_already_ok:
        line += f"; {summary.skipped_already_ok} already done"
    return line
