"""Reading a run folder: the results as a table (CSV / Parquet / JSONL) and the run's status.

Both only read: they never repair, lock or touch an app, so they are safe to use
while a run is writing to the same folder (a line being written is ignored).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from .results import (
    RecordStatus,
    ResultRecord,
    block_bounds,
    blocks,
    find_all,
    mapped,
    release,
    scan_results,
)
from .runfolder import RunDir, RunFolder, read_summary

__all__ = ["ExportFormat", "Failure", "RunStatus", "export", "load_table", "read_status"]

logger = logging.getLogger(__name__)

ExportFormat = Literal["csv", "parquet", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "jsonl")

_HEAD = ("key", "row", "status")
_TAIL = (
    "error_type",
    "error_message",
    "attempts",
    "causes",
    "replica",
    "queue_time",
    "run_time",
    "finished_at",
)
_FAILED_STATUSES = frozenset({RecordStatus.ERROR, RecordStatus.TIMEOUT})


# --- The table ------------------------------------------------------------------


def export(
    run_dir: RunDir, format: ExportFormat = "csv", out: str | os.PathLike[str] | None = None
) -> Path:
    """Write the run's results as one table and return its path.

    One row per key (its ok record, else its latest), sorted by row; columns
    key, row, status, `inputs.<name>`, `outputs.<name>`, error_type,
    error_message, attempts, causes, replica, queue_time, run_time, finished_at.
    In CSV and Parquet, nested values (lists, dicts) are JSON strings, and so are
    the values of a column that mixes types; JSONL keeps them as they are.
    `out` defaults to `export.<format>` in the run folder. The file is replaced
    atomically. Blocking: call it through `anyio.to_thread.run_sync` from async code.

    Read it back with `pd.read_parquet(out)`, `pd.read_csv(out)` (add
    `dtype={"key": str}` if keys could look like numbers) or
    `pd.read_json(out, lines=True, convert_dates=False)` (pandas otherwise turns
    columns named `*_at` / `*_time` into dates).
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"unknown export format {format!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )
    folder = RunFolder.at(run_dir)
    target = Path(out) if out is not None else folder.root / f"export.{format}"
    if target.resolve() == folder.results_path.resolve():
        raise ValueError(f"refusing to export over the results file itself ({target})")
    table = load_table(folder, nested="native" if format == "jsonl" else "json")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _write(table, tmp, format)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def load_table(run_dir: RunDir, *, nested: Literal["json", "native"] = "json") -> pd.DataFrame:
    """The results as a DataFrame, one row per key, as `export` writes it.

    Two passes over the file: the first finds the line that counts for each key
    (from the line prefixes alone), the second parses only those lines, block by
    block, so memory grows with the table, not with the file.
    """
    path = RunFolder.at(run_dir).results_path
    scan = scan_results(path, want_lines=True)
    assert scan.line_of is not None
    wanted = np.fromiter(scan.line_of.values(), dtype=np.int64, count=len(scan.line_of))
    wanted.sort()
    scan.line_of, scan.status = None, {}  # only the line numbers are needed from here on
    frames = [
        pd.DataFrame.from_records(rows)
        for rows in _selected_rows(path, wanted, scan.end_offset, nested == "json")
        if rows
    ]
    if not frames:
        empty: pd.DataFrame = pd.DataFrame(columns=[*_HEAD, *_TAIL])
        return empty
    table = pd.concat(frames, ignore_index=True, sort=False)
    table = table[_column_order(table.columns)]
    if nested == "json":
        table = _mixed_columns_as_json(table)
    ordered: pd.DataFrame = table.sort_values(["row", "key"], kind="stable", ignore_index=True)
    return ordered


def _selected_rows(
    path: Path, wanted: np.ndarray[Any, Any], stop: int, as_json: bool
) -> Iterator[list[dict[str, Any]]]:
    with mapped(path) as buf:
        for block in blocks(buf, stop):
            first, last = block.first_line, block.first_line + block.n_lines
            lo, hi = np.searchsorted(wanted, [first, last])
            if lo == hi:
                continue
            lines = block.lines()
            rows = []
            for ordinal in wanted[lo:hi].tolist():
                try:
                    rows.append(_flatten(json.loads(lines[ordinal - first]), as_json))
                except ValueError:
                    logger.warning(
                        "results line %d is not valid JSON; left out of the table", ordinal + 1
                    )
            yield rows


def _flatten(data: dict[str, Any], as_json: bool) -> dict[str, Any]:
    encode = _as_json if as_json else _identity
    row = {name: data.get(name) for name in _HEAD}
    for group in ("inputs", "outputs"):
        for name, value in (data.get(group) or {}).items():
            row[f"{group}.{name}"] = encode(value)
    for name in _TAIL:
        row[name] = encode(data.get(name))
    return row


def _as_json(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def _identity(value: Any) -> Any:
    return value


def _column_order(columns: pd.Index) -> list[str]:
    names = [str(c) for c in columns]
    inputs = [c for c in names if c.startswith("inputs.")]
    outputs = [c for c in names if c.startswith("outputs.")]
    return [*_HEAD, *inputs, *outputs, *_TAIL]


def _mixed_columns_as_json(table: pd.DataFrame) -> pd.DataFrame:
    # Parquet needs one type per column; an output that is sometimes a number and
    # sometimes text becomes text, JSON-encoded where it was not a string.
    for name in table.columns:
        column = table[name]
        if column.dtype != object:
            continue
        kinds = {type(v) for v in column if not _is_missing(v)}
        if len(kinds) > 1 and not kinds <= {int, float}:
            table[name] = column.map(
                lambda v: v if _is_missing(v) or isinstance(v, str) else json.dumps(v)
            )
    return table


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _write(table: pd.DataFrame, path: Path, format: ExportFormat) -> None:
    if format == "csv":
        table.to_csv(path, index=False)
    elif format == "parquet":
        table.to_parquet(path, index=False)
    else:
        # Written by hand rather than DataFrame.to_json, which rounds floats to 15 digits.
        with open(path, "w", encoding="utf-8") as handle:
            for start in range(0, len(table), _JSONL_ROWS):
                for record in table.iloc[start : start + _JSONL_ROWS].to_dict(orient="records"):
                    clean = {k: None if _is_missing(v) else v for k, v in record.items()}
                    handle.write(json.dumps(clean, ensure_ascii=False, default=_numpy_default))
                    handle.write("\n")


_JSONL_ROWS = 10_000


def _numpy_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


# --- The status -----------------------------------------------------------------


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
    path: Path, status: dict[str, RecordStatus], stop: int, limit: int
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
