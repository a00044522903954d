"""What the report shows, read from a run folder in two passes over `results.jsonl`.

The first pass reads a few numbers of every line (times, replica, status: see
`_report_lines`) into numpy arrays, and, for the records that count, a row and a line
number; it parses with `json.loads` only the failures it groups. The second parses just
the lines the gallery shows. Memory grows with ~40 bytes per line, the report with the
samples it shows, never with every row.
"""

from __future__ import annotations

import bisect
import itertools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._index import KeyIndex
from ._record import RecordStatus
from ._report_lines import STATUSES, read_lines
from ._runfolder import RunFolder, read_manifest, read_summary
from ._scan import counting_lines, mapped, release, scan_results

__all__ = [
    "Cells",
    "FailureGroupData",
    "Lines",
    "ReportData",
    "collect",
    "distinct_rows",
    "failure_cause",
]

_NUMBERS = re.compile(r"\b\d+(\.\d+)?\b")
_FAILED = frozenset({RecordStatus.ERROR.value, RecordStatus.TIMEOUT.value})
_FAILED_CODES = (STATUSES.index(RecordStatus.ERROR.value), STATUSES.index("timeout"))
_CANCELLED = STATUSES.index(RecordStatus.CANCELLED.value)
#: Rows shown per failure group, gallery cells and matrix rows at most.
GROUP_ROWS = 20
GALLERY_CELLS = 240
MATRIX_ROWS = 60
#: Lines are read in chunks of about this many bytes: what one chunk's matches take
#: in Python objects (a few MB) is all the reading holds at a time.
_CHUNK = 1 << 20


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
    #: Line numbers and records of the rows shown (the first `GROUP_ROWS`).
    lines: list[int] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class Lines:
    """One entry per line of the file: times (epoch seconds, NaN unknown; queue and run
    time in float32, they are shown to the millisecond), replica (-1 none), status
    (index in `STATUSES`, -1 no record); and the retries of all lines together."""

    submitted: np.ndarray[Any, np.dtype[np.float64]]
    finished: np.ndarray[Any, np.dtype[np.float64]]
    queue_time: np.ndarray[Any, np.dtype[np.float32]]
    run_time: np.ndarray[Any, np.dtype[np.float32]]
    replica: np.ndarray[Any, np.dtype[np.int32]]
    status: np.ndarray[Any, np.dtype[np.int8]]
    retries: int = 0

    @classmethod
    def allocate(cls, n: int) -> Lines:
        return cls(
            submitted=np.full(n, np.nan),
            finished=np.full(n, np.nan),
            queue_time=np.full(n, np.nan, dtype=np.float32),
            run_time=np.full(n, np.nan, dtype=np.float32),
            replica=np.full(n, -1, dtype=np.int32),
            status=np.full(n, -1, dtype=np.int8),
        )


@dataclass(slots=True)
class Cells:
    """The records that count (cancelled ones aside): `mask` marks their lines and `rows`
    holds their rows, in line order (int32 while every row fits)."""

    mask: np.ndarray[Any, np.dtype[np.bool_]] = field(
        default_factory=lambda: np.zeros(0, dtype=bool)
    )
    rows: np.ndarray[Any, Any] = field(default_factory=lambda: np.zeros(0, dtype=np.int32))

    def __len__(self) -> int:
        return len(self.rows)

    def lines(self, positions: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
        """The line numbers of the cells at `positions`."""
        found: np.ndarray[Any, np.dtype[np.int64]] = np.flatnonzero(self.mask)[positions]
        return found


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
    cells: Cells
    #: (row, matrix column index or 0, line) of the cells the gallery shows.
    gallery: list[tuple[int, int, int]] = field(default_factory=list)
    #: Line number -> parsed record, for the lines shown.
    shown: dict[int, dict[str, Any]] = field(default_factory=dict)
    torn_bytes: int = 0
    #: Lines of the newest cells, newest first (asked for by a live report).
    newest: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Chunk:
    first_line: int
    start: int
    end: int


def collect(root: Path, *, newest: int = 0) -> ReportData:
    """Read the run folder at `root` for the report; with `newest`, the records of that
    many newest cells too (a live report shows what just came out)."""
    folder = RunFolder.at(root)
    manifest = read_manifest(folder)
    scan = scan_results(folder.results_path)
    counts = {status.value: scan.status.counts[status] for status in RecordStatus}
    keys = len(scan.status)
    scan.status = KeyIndex()  # only the counts are needed from here on
    counting = counting_lines(folder.results_path, scan)
    data = ReportData(
        root=folder.root,
        summary=read_summary(folder),
        manifest=manifest,
        counts=counts,
        keys=keys,
        lines=Lines.allocate(scan.lines),
        replicas=[],
        failures=[],
        matrix=_matrix_of(manifest),
        cells=Cells(),
        torn_bytes=len(scan.torn),
    )
    chunks = _first_pass(data, folder.results_path, scan.end_offset, counting)
    del counting
    _second_pass(data, folder.results_path, chunks)
    if newest > 0 and len(data.cells):
        positions = np.arange(max(len(data.cells) - newest, 0), len(data.cells))
        data.newest = data.cells.lines(positions).tolist()[::-1]
        _read(data, folder.results_path, chunks, data.newest)
    return data


def _matrix_of(manifest: Mapping[str, Any] | None) -> dict[str, list[Any]]:
    inputs = (manifest or {}).get("inputs") or {}
    matrix = inputs.get("matrix") or {}
    return {str(k): list(v) for k, v in matrix.items() if isinstance(v, list)}


def _first_pass(data: ReportData, path: Path, stop: int, counting: bytearray) -> list[_Chunk]:
    """Fill `data.lines`, `data.cells`, `data.replicas` and `data.failures` from the lines
    of `buf[:stop]`; the chunks read, for the second pass to find a line by."""
    reader = _FirstPass(data.lines, np.frombuffer(counting, dtype=np.uint8).astype(bool))
    with mapped(path) as buf:
        for start, end in _chunks(buf, 0, stop - 1) if stop > 0 else ():
            raw = buf[start:end]
            release(buf, start, end + 1)  # read once: not kept in this process's memory
            if not reader.add(raw, start, end):
                break  # the file was cut short under us: keep what was read
    data.cells = Cells(reader.mask, reader.rows[: reader.cells])
    data.replicas = list(reader.replicas)
    data.failures = sorted(reader.groups.values(), key=lambda g: -g.count)
    return reader.chunks


class _FirstPass:
    """The first pass, one chunk of lines at a time."""

    def __init__(self, lines: Lines, counts: np.ndarray[Any, np.dtype[np.bool_]]) -> None:
        self.lines = lines
        self.counts = counts
        self.mask = np.zeros(len(counts), dtype=bool)
        self.rows: np.ndarray[Any, Any] = np.empty(int(np.count_nonzero(counts)), np.int32)
        self.cells = 0
        self.replicas: dict[str, int] = {}
        self.groups: dict[str, FailureGroupData] = {}
        self.chunks: list[_Chunk] = []
        self.first = 0

    def add(self, raw: bytes, start: int, end: int) -> bool:
        columns = read_lines(raw)
        first, lines = self.first, self.lines
        n = min(len(columns.status), len(lines.status) - first)
        if n <= 0:
            return False
        at = slice(first, first + n)
        codes = np.array(
            [self.replicas.setdefault(name, len(self.replicas)) for name in columns.names] or [0],
            dtype=np.int32,
        )
        status = columns.status[:n]
        lines.replica[at] = np.where(columns.replica[:n] >= 0, codes[columns.replica[:n]], -1)
        lines.status[at] = status
        lines.submitted[at] = columns.submitted[:n]
        lines.finished[at] = columns.finished[:n]
        lines.queue_time[at] = columns.queue_time[:n]
        lines.run_time[at] = columns.run_time[:n]
        lines.retries += columns.retries
        counted = self.counts[at] & (status >= 0)
        failed = np.flatnonzero(counted & np.isin(status, _FAILED_CODES))
        if failed.size:
            split = raw.split(b"\n")
            for index in failed.tolist():
                _add_failure(self.groups, split[index], first + index)
        kept = counted & (status != _CANCELLED)
        self.mask[at] = kept
        rows = columns.row[:n][kept]
        if rows.size and not _fits(rows, self.rows.dtype):
            self.rows = self.rows.astype(np.int64)
        self.rows[self.cells : self.cells + rows.size] = rows
        self.cells += rows.size
        self.chunks.append(_Chunk(first, start, end))
        self.first += n
        return True


def _fits(values: np.ndarray[Any, Any], dtype: np.dtype[Any]) -> bool:
    limits = np.iinfo(dtype)
    return bool(limits.min <= values.min() and values.max() <= limits.max)


def _chunks(buf: Any, start: int, end: int) -> Iterator[tuple[int, int]]:
    """(start, end) of runs of whole lines of about `_CHUNK` bytes covering `buf[start:end]`
    (`buf[end]` is a newline, or the end of the lines read)."""
    while True:
        cut = end
        if end - start > _CHUNK:
            cut = buf.rfind(b"\n", start, start + _CHUNK)
            if cut < 0:  # a line longer than a chunk
                cut = buf.find(b"\n", start + _CHUNK, end)
            if cut < 0:
                cut = end
        yield start, cut
        if cut >= end:
            return
        start = cut + 1


def _add_failure(groups: dict[str, FailureGroupData], raw: bytes, ordinal: int) -> None:
    try:
        record = json.loads(raw)
    except ValueError:
        return
    status = record.get("status") if isinstance(record, dict) else None
    if status not in _FAILED:
        return
    message = record.get("error_message")
    cause = failure_cause(status, record.get("error_type"), message)
    group = groups.get(cause)
    if group is None:
        group = groups[cause] = FailureGroupData(cause=cause, example=str(message or ""))
    group.count += 1
    if len(group.lines) < GROUP_ROWS:
        group.lines.append(ordinal)
        group.records.append(record)


def _column_index(matrix: Mapping[str, Sequence[Any]]) -> dict[tuple[Any, ...], int]:
    """Each combination of matrix values -> its column, in the manifest's order."""
    values = [[_hashable(v) for v in vs] for vs in matrix.values()]
    return {combo: i for i, combo in enumerate(itertools.product(*values))} if values else {}


def _candidates(data: ReportData) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Positions in `data.cells` the gallery may show, in row then line order: every cell
    of the first `MATRIX_ROWS` rows, or at most `GALLERY_CELLS` cells evenly spread."""
    rows = data.cells.rows
    if data.matrix:
        first_rows = np.unique(rows)[:MATRIX_ROWS]
        wanted = np.flatnonzero(np.isin(rows, first_rows))
        return wanted[np.argsort(rows[wanted], kind="stable")]
    order = np.argsort(rows, kind="stable")  # cells are in line order already
    if len(order) > GALLERY_CELLS:
        step = len(order) / GALLERY_CELLS
        order = order[[int(i * step) for i in range(GALLERY_CELLS)]]
    return order


def distinct_rows(data: ReportData) -> int:
    """How many rows have a record that counts."""
    return int(np.unique(data.cells.rows).size) if len(data.cells) else 0


def _second_pass(data: ReportData, path: Path, chunks: list[_Chunk]) -> None:
    """Parse the lines the gallery may show and pick its cells (in a matrix, the column
    of a cell comes from its record's inputs)."""
    positions = _candidates(data)
    wanted = data.cells.lines(positions).tolist()
    _read(data, path, chunks, wanted)
    cells = zip(data.cells.rows[positions].tolist(), wanted, strict=True)
    if not data.matrix:
        data.gallery = [(row, 0, line) for row, line in cells]
        return
    columns = _column_index(data.matrix)
    placed = []
    for row, line in cells:
        inputs = data.shown[line].get("inputs") or {}
        column = columns.get(tuple(_hashable(inputs.get(name)) for name in data.matrix), -1)
        if column >= 0:
            placed.append((row, column, line))
        else:
            del data.shown[line]
    data.gallery = sorted(placed)


def _read(data: ReportData, path: Path, chunks: list[_Chunk], wanted: list[int]) -> None:
    """Parse the lines numbered `wanted` into `data.shown`."""
    firsts = [chunk.first_line for chunk in chunks]
    by_chunk: dict[int, list[int]] = {}
    for ordinal in wanted:
        by_chunk.setdefault(bisect.bisect_right(firsts, ordinal) - 1, []).append(ordinal)
    with mapped(path) as buf:
        for index, ordinals in sorted(by_chunk.items()):
            chunk = chunks[index]
            split = bytes(buf[chunk.start : chunk.end]).split(b"\n")
            for ordinal in ordinals:
                data.shown[ordinal] = json.loads(split[ordinal - chunk.first_line])
            release(buf, chunk.start, chunk.end)


def _hashable(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float) and value.is_integer():
        return int(value)  # 4.0 in the manifest and 4 in a record are the same cell
    return value
