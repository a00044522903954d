"""The end-of-run summary: counts, failures grouped by cause, throughput, replicas."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .replicas import Replica
from .scheduler import Outcome, OutcomeStatus

__all__ = ["SummaryBuilder", "format_summary"]

_NUMBERS = re.compile(r"\b\d+(\.\d+)?\b")


@dataclass(slots=True)
class _Group:
    count: int
    example: dict[str, Any]


@dataclass(slots=True)
class SummaryBuilder:
    """Collects outcomes as they arrive; `build()` makes the summary dict."""

    counts: Counter[str] = field(default_factory=Counter)
    failures: dict[str, _Group] = field(default_factory=dict)
    run_times: dict[str, list[float]] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.counts[outcome.status.value] += 1
        if outcome.replica is not None and outcome.run_time is not None:
            self.run_times.setdefault(outcome.replica, []).append(outcome.run_time)
        if outcome.status in (OutcomeStatus.ERROR, OutcomeStatus.TIMEOUT):
            error = outcome.error
            kind = "Timeout" if outcome.status is OutcomeStatus.TIMEOUT else type(error).__name__
            message = getattr(error, "message", None) or str(error)
            cause = f"{kind}: {_NUMBERS.sub('N', message)[:160]}"
            group = self.failures.get(cause)
            if group is None:
                self.failures[cause] = _Group(
                    1,
                    {
                        "key": outcome.submission.key,
                        "row": outcome.submission.row,
                        "message": message,
                    },
                )
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
    ) -> dict[str, Any]:
        """`done`: this manifest's submissions that are ok (the folder may also hold keys
        of rows the manifest no longer has, so its ok count can be larger)."""
        ok = self.counts[OutcomeStatus.OK.value]
        if done is None:
            done = folder_counts.get("ok", 0)
        left = None if total is None else max(total - done, 0)
        return {
            "name": name,
            "run_dir": run_dir,
            "interrupted": interrupted,
            "complete": left == 0,
            "total": total,
            "skipped_already_ok": skipped,
            "skipped_failed_before": failed_kept,
            "identical_rows": duplicates,
            "this_run": {s.value: self.counts[s.value] for s in OutcomeStatus},
            "folder": folder_counts,
            "remaining": left,
            "wall_seconds": round(wall, 3),
            "throughput_per_second": round(ok / wall, 3) if wall > 0 else None,
            "failures_by_cause": [
                {"cause": cause, "count": g.count, "example": g.example}
                for cause, g in sorted(self.failures.items(), key=lambda kv: -kv[1].count)
            ],
            "replicas": [self._replica(r) for r in replicas],
            "resume_command": resume_command if left else None,
        }

    def _replica(self, replica: Replica) -> dict[str, Any]:
        times = self.run_times.get(replica.name, [])
        stats = replica.stats
        return {
            "name": replica.name,
            "submitted": stats.submitted,
            "ok": stats.ok,
            "failed": stats.failed,
            "overloads": stats.overloads,
            "ejections": stats.ejections,
            "busy_seconds": round(stats.busy_seconds, 3),
            "mean_run_seconds": round(sum(times) / len(times), 4) if times else None,
        }


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as the terminal shows it."""
    this = summary["this_run"]
    lines = [
        f"{summary['name']}: {this['ok']} ok, {this['error']} failed, {this['timeout']} timed "
        f"out, {this['cancelled']} cancelled in {summary['wall_seconds']:.1f} s"
        + (
            f" ({summary['throughput_per_second']:.1f}/s)"
            if summary["throughput_per_second"]
            else ""
        )
        + (
            f"; {summary['skipped_already_ok']} already done"
            if summary["skipped_already_ok"]
            else ""
        ),
    ]
    if summary.get("skipped_failed_before"):
        lines.append(
            f"  {summary['skipped_failed_before']} failed before and were not retried "
            "(--no-retry-failed)"
        )
    if summary["total"] is not None:
        ok = summary["total"] - (summary["remaining"] or 0)
        lines.append(f"run folder {summary['run_dir']}: {ok} of {summary['total']} ok")
        if not summary["replicas"] and summary["this_run"]["ok"] == 0 and not summary["remaining"]:
            lines.append("  nothing left to run: no app was started or contacted")
    for group in summary["failures_by_cause"][:10]:
        example = group["example"]
        lines.append(
            f"  {group['count']} x {group['cause']}  (e.g. row {example['row']}, "
            f"key {example['key']})"
        )
    for replica in summary["replicas"]:
        lines.append(
            f"  {replica['name']}: {replica['ok']} ok, {replica['failed']} failed, "
            f"{replica['overloads']} overloads, {replica['ejections']} ejections"
        )
    if summary["resume_command"]:
        lines.append(f"to resume: {summary['resume_command']}")
    return "\n".join(lines)
