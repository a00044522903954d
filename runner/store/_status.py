"""Where a run stands, read from its folder alone: counts by status, the last failures,
completeness. Reads only (no repair, no lock, no app), so it is safe beside a running
batch; it needs no pandas, so `spacerun status` starts fast."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._results import RecordStatus, ResultRecord
from ._runfolder import RunDir, RunFolder, read_summary
from ._scan import block_bounds, find_all, mapped, release, scan_results

__all__ = ["Failure", "RunStatus", "read_status"]

_FAILED_STATUSES = frozenset({RecordStatus.ERROR, RecordStatus.TIMEOUT})


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """A key whose record that counts is a failure (error or timeout)."""

    key: str
    row: int
    status: RecordStatus
    error_type: str | None
    error_message: str | None
    attempts: int
    finished_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStatus:
    """Where a run stands, from its folder alone. See `read_status`."""

    run_dir: Path
    counts: dict[RecordStatus, int]
    """Keys per status (the status that counts for each key)."""
    keys: int
    """Distinct keys with a record."""
    lines: int
    """Records in the file, superseded ones included."""
    total: int | None
    """Submissions in the run, if `summary.json` says (its `total`)."""
    last_failures: tuple[Failure, ...]
    """The most recent failures still standing, oldest first."""
    torn_bytes: int
    """Bytes after the last complete line: a torn line, or one being written right now."""
    corrupt_lines: int
    """Complete lines that are not records."""

    @property
    def ok(self) -> int:
        return self.counts[RecordStatus.OK]

    @property
    def failed(self) -> int:
        return sum(self.counts[s] for s in _FAILED_STATUSES)

    @property
    def pending(self) -> int | None:
        """Submissions with no record yet, if the total is known."""
        return None if self.total is None else max(self.total - self.keys, 0)

    @property
    def complete(self) -> bool | None:
        """Whether every submission is ok (None if the total is unknown)."""
        return None if self.total is None else self.ok >= self.total

    def to_dict(self) -> dict[str, Any]:
        """Plain data, for `spacerun status --json`."""
        return {
            "run_dir": str(self.run_dir),
            "counts": {status.value: n for status, n in self.counts.items()},
            "keys": self.keys,
            "total": self.total,
            "pending": self.pending,
            "complete": self.complete,
            "lines": self.lines,
            "torn_bytes": self.torn_bytes,
            "corrupt_lines": self.corrupt_lines,
            "last_failures": [
                {
                    "key": f.key,
                    "row": f.row,
                    "status": f.status.value,
                    "error_type": f.error_type,
                    "error_message": f.error_message,
                    "attempts": f.attempts,
                    "finished_at": f.finished_at,
                }
                for f in self.last_failures
            ],
        }

    def format(self) -> str:
        """What `spacerun status` prints."""
        counts = ", ".join(f"{n} {status.value}" for status, n in self.counts.items() if n)
        total = f" of {self.total}" if self.total is not None else ""
        lines = [f"{self.run_dir}: {self.ok}{total} ok" + (f" ({counts})" if counts else "")]
        if self.pending:
            lines.append(f"{self.pending} not run yet")
        if self.complete:
            lines.append("complete")
        if self.torn_bytes:
            lines.append(f"{self.torn_bytes} bytes of a torn last line (repaired on the next run)")
        if self.last_failures:
            lines.append("last failures:")
            for failure in self.last_failures:
                message = (
                    (failure.error_message or "").splitlines()[0][:160]
                    if failure.error_message
                    else ""
                )
                lines.append(
                    f"  row {failure.row} ({failure.key}) {failure.status.value}: "
                    f"{failure.error_type}: {message} [{failure.attempts} attempts, "
                    f"{failure.finished_at}]"
                )
        return "\n".join(lines)


def read_status(run_dir: RunDir, *, last_failures: int = 10) -> RunStatus:
    """Counts by status, the last failures and completeness of the run in `run_dir`.

    Raises FileNotFoundError if `run_dir` is not a folder.
    """
    folder = RunFolder.at(run_dir)
    if not folder.root.is_dir():
        raise FileNotFoundError(f"no run folder at {folder.root}")
    scan = scan_results(folder.results_path)
    counts = dict.fromkeys(RecordStatus, 0)
    for status in scan.status.values():
        counts[status] += 1
    summary = read_summary(folder) or {}
    total = summary.get("total")
    return RunStatus(
        run_dir=folder.root,
        counts=counts,
        keys=len(scan.status),
        lines=scan.lines,
        total=total if isinstance(total, int) and not isinstance(total, bool) else None,
        last_failures=_last_failures(
            folder.results_path, scan.status, scan.end_offset, last_failures
        ),
        torn_bytes=len(scan.torn),
        corrupt_lines=scan.corrupt,
    )


_FAILED_LINE = rb'(\{"key":"((?:[^"\\\n]|\\.)*)","status":"(?:error|timeout)",[^\n]*)'
_FAILED_AFTER_NL = re.compile(b"\n" + _FAILED_LINE)
_FAILED_AT = re.compile(_FAILED_LINE)


def _last_failures(
    path: Path, status: Mapping[str, RecordStatus], stop: int, limit: int
) -> tuple[Failure, ...]:
    """Read the file backwards until `limit` keys whose latest record is a failure are found.

    Going backwards, the first failing line met for a key is its latest record if
    the key's status is a failure; only lines with a failing status are parsed.
    """
    found: list[Failure] = []
    seen: set[str] = set()
    with mapped(path) as buf:
        for start, end in reversed(block_bounds(buf, stop)):
            matches = find_all(_FAILED_AFTER_NL, _FAILED_AT, buf, start, end)
            release(buf, start, end + 1)
            for line, raw_key in reversed(matches):
                if len(found) >= limit:
                    return tuple(reversed(found))
                key = json.loads(b'"' + raw_key + b'"') if b"\\" in raw_key else raw_key.decode()
                if key in seen or status.get(key) not in _FAILED_STATUSES:
                    continue
                seen.add(key)
                record = ResultRecord.from_line(line)
                found.append(
                    Failure(
                        key=record.key,
                        row=record.row,
                        status=record.status,
                        error_type=record.error_type,
                        error_message=record.error_message,
                        attempts=record.attempts,
                        finished_at=record.finished_at,
                    )
                )
    return tuple(reversed(found))
