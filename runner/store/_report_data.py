"""What the report shows, read from a run folder in two passes over `results.jsonl`.

The first pass parses every line and keeps only numbers (times, replica, status) and,
for the records that count, a row, a matrix cell and a line number; the second parses
again just the lines the gallery and the failure groups show. Memory grows with a few
numbers per line, the report with the samples it shows, never with every row.
"""

from __future__ import annotations

import itertools
import json
import re
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ._index import KeyIndex
from ._record import RecordStatus
from ._runfolder import RunFolder, read_manifest, read_summary
from ._scan import blocks, counting_lines, mapped, scan_results

__all__ = ["Cells", "FailureGroupData", "ReportData", "collect", "distinct_rows", "failure_cause"]

_NUMBERS = re.compile(r"\b\d+(\.\d+)?\b")
_FAILED = frozenset({RecordStatus.ERROR.value, RecordStatus.TIMEOUT.value})
_STATUSES = tuple(s.value for s in RecordStatus)
#: Rows shown per failure group, gallery cells and matrix rows at most.
GROUP_ROWS = 20
GALLERY_CELLS = 240
MATRIX_ROWS = 60


def failure_cause(status: str, error_type: str | None, message: str | None) -> str:
    """A failure's cause: its kind and message with numbers folded to `N` (as
    `summary.json` groups them), so that failures differing by an id group together."""
    kind = "Timeout" if status == RecordStatus.TIMEOUT.value else (error_type or "Error")
    return f"{kind}: {_NUMBERS.sub('N', message or '')[:160]}"


@dataclass(slots=True)
class FailureGroupData:
    cause: str
    count: int = 0
    example: str = ""
    #: Line numbers of the rows shown (the first `GROUP_ROWS`).
    lines: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Lines:
    """One entry per line of the file: times (epoch seconds, NaN unknown), replica, status."""

    submitted: array[float] = field(default_factory=lambda: array("d"))
    started: array[float] = field(default_factory=lambda: array("d"))
    queued: array[float] = field(default_factory=lambda: array("d"))
    finished: array[float] = field(default_factory=lambda: array("d"))
    queue_time: array[float] = field(default_factory=lambda: array("d"))
    run_time: array[float] = field(default_factory=lambda: array("d"))
    replica: array[int] = field(default_factory=lambda: array("i"))
    status: array[int] = field(default_factory=lambda: array("b"))
    attempts: array[int] = field(default_factory=lambda: array("i"))


@dataclass(slots=True)
class Cells:
    """(row, matrix column index or 0, line) of each record that counts, as arrays: a
    list of tuples took ~100 bytes a record."""

    rows: array[int] = field(default_factory=lambda: array("q"))
    columns: array[int] = field(default_factory=lambda: array("q"))
    lines: array[int] = field(default_factory=lambda: array("q"))

    def __len__(self) -> int:
        return len(self.rows)

    def append(self, row: int, column: int, line: int) -> None:
        self.rows.append(row)
        self.columns.append(column)
        self.lines.append(line)


@dataclass(slots=True)
class ReportData:
    """Everything the report renders, gathered by `collect`."""

    root: Path
    summary: dict[str, Any] | None
    manifest: dict[str, Any] | None
    counts: dict[str, int]
    keys: int
    lines: Lines
    replicas: list[str]
    failures: list[FailureGroupData]
    #: Matrix parameters found in the records' inputs, and their values in order.
    matrix: dict[str, list[Any]]
    #: (row, matrix column index or 0, line) of each record that counts.
    cells: Cells
    #: Line number -> parsed record, for the lines shown.
    shown: dict[int, dict[str, Any]] = field(default_factory=dict)
    torn_bytes: int = 0


def collect(root: Path) -> ReportData:
    """Read the run folder at `root` for the report."""
    folder = RunFolder.at(root)
    manifest = read_manifest(folder)
    scan = scan_results(folder.results_path)
    counts = {status.value: scan.status.counts[status] for status in RecordStatus}
    keys = len(scan.status)
    scan.status = KeyIndex()  # only the counts are needed from here on
    counting = counting_lines(folder.results_path, scan)
    matrix = _matrix_of(manifest)
    data = ReportData(
        root=folder.root,
        summary=read_summary(folder),
        manifest=manifest,
        counts=counts,
        keys=keys,
        lines=Lines(),
        replicas=[],
        failures=[],
        matrix=matrix,
        cells=Cells(),
        torn_bytes=len(scan.torn),
    )
    _first_pass(data, folder.results_path, scan.end_offset, counting)
    _second_pass(data, folder.results_path, scan.end_offset)
    return data


def _matrix_of(manifest: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    inputs = (manifest or {}).get("inputs") or {}
    matrix = inputs.get("matrix") or {}
    return {str(k): list(v) for k, v in matrix.items() if isinstance(v, list)}


def _first_pass(data: ReportData, path: Path, stop: int, counting: bytearray) -> None:
    replicas: dict[str, int] = {}
    groups: dict[str, FailureGroupData] = {}
    columns = _column_index(data.matrix)
    lines = data.lines
    with mapped(path) as buf:
        for block in blocks(buf, stop):
            for offset, raw in enumerate(block.lines()):
                ordinal = block.first_line + offset
                try:
                    record = json.loads(raw)
                except ValueError:
                    record = {}
                if not isinstance(record, dict):
                    record = {}
                _add_times(lines, record, replicas)
                if counting[ordinal] and record:
                    _add_counting(data, record, ordinal, groups, columns)
    data.replicas = list(replicas)
    data.failures = sorted(groups.values(), key=lambda g: -g.count)


def _add_times(lines: Lines, record: dict[str, Any], replicas: dict[str, int]) -> None:
    finished = _epoch(record.get("finished_at"))
    queue_time = _number(record.get("queue_time"))
    run_time = _number(record.get("run_time"))
    started = finished - run_time if run_time == run_time else float("nan")
    queued = started - queue_time if queue_time == queue_time else started
    submitted = _epoch(record.get("submitted_at"))
    if submitted != submitted:  # older folders: the last attempt's times are all there is
        submitted = queued
    name = record.get("replica")
    lines.submitted.append(submitted)
    lines.queued.append(queued)
    lines.started.append(started)
    lines.finished.append(finished)
    lines.queue_time.append(queue_time)
    lines.run_time.append(run_time)
    lines.replica.append(-1 if name is None else replicas.setdefault(str(name), len(replicas)))
    status = record.get("status")
    lines.status.append(_STATUSES.index(status) if status in _STATUSES else -1)
    lines.attempts.append(int(record.get("attempts") or 0))


def _add_counting(
    data: ReportData,
    record: dict[str, Any],
    ordinal: int,
    groups: dict[str, FailureGroupData],
    columns: dict[tuple[Any, ...], int],
) -> None:
    status = record.get("status")
    if status in _FAILED:
        message = record.get("error_message")
        cause = failure_cause(status, record.get("error_type"), message)
        group = groups.get(cause)
        if group is None:
            group = groups[cause] = FailureGroupData(cause=cause, example=str(message or ""))
        group.count += 1
        if len(group.lines) < GROUP_ROWS:
            group.lines.append(ordinal)
    if status == RecordStatus.CANCELLED.value:
        return  # nothing to show: it runs again on resume
    column = 0
    if columns:
        inputs = record.get("inputs") or {}
        column = columns.get(tuple(_hashable(inputs.get(name)) for name in data.matrix), -1)
    data.cells.append(int(record.get("row") or 0), column, ordinal)


def _column_index(matrix: Mapping[str, Sequence[Any]]) -> dict[tuple[Any, ...], int]:
    """Each combination of matrix values -> its column, in the manifest's order."""
    values = [[_hashable(v) for v in vs] for vs in matrix.values()]
    return {combo: i for i, combo in enumerate(itertools.product(*values))} if values else {}


def gallery_cells(data: ReportData) -> list[tuple[int, int, int]]:
    """The cells the gallery shows: every matrix column of the first `MATRIX_ROWS` rows,
    or, in row order, at most `GALLERY_CELLS` cells evenly spread over the run."""
    import numpy as np  # loaded with the report's figures anyway

    rows, columns, lines = (
        np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, dtype=np.int64)
        for a in (data.cells.rows, data.cells.columns, data.cells.lines)
    )
    order = np.lexsort((lines, columns, rows))  # by row, then column, then line
    if data.matrix:
        first_rows = np.unique(rows)[:MATRIX_ROWS]
        order = order[np.isin(rows[order], first_rows) & (columns[order] >= 0)]
    elif len(order) > GALLERY_CELLS:
        step = len(order) / GALLERY_CELLS
        order = order[[int(i * step) for i in range(GALLERY_CELLS)]]
    return list(
        zip(rows[order].tolist(), columns[order].tolist(), lines[order].tolist(), strict=True)
    )


def distinct_rows(data: ReportData) -> int:
    """How many rows have a record that counts."""
    import numpy as np

    if not data.cells:
        return 0
    return int(np.unique(np.frombuffer(data.cells.rows, dtype=np.int64)).size)


def _second_pass(data: ReportData, path: Path, stop: int) -> None:
    wanted = {ordinal for _, _, ordinal in gallery_cells(data)}
    for group in data.failures:
        wanted.update(group.lines)
    if not wanted:
        return
    with mapped(path) as buf:
        for block in blocks(buf, stop):
            last = block.first_line + block.n_lines
            if not any(block.first_line <= o < last for o in wanted):
                continue
            for offset, raw in enumerate(block.lines()):
                if block.first_line + offset in wanted:
                    data.shown[block.first_line + offset] = json.loads(raw)
    for group in data.failures:
        group.records = [data.shown[o] for o in group.lines if o in data.shown]


def _epoch(value: Any) -> float:
    if not isinstance(value, str) or not value:
        return float("nan")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return float("nan")


def _number(value: Any) -> float:
    return (
        float(value)
        if isinstance(value, (int, float)) and not isinstance(value, bool)
        else (float("nan"))
    )


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 4.0 in the manifest and 4 in a record are the same cell
    return value
