"""The numbers the report needs of each line of `results.jsonl`, read fast.

A line as `ResultRecord.to_line` writes it has its fields in a fixed order, so one
regular expression over a chunk of lines picks out status, row, attempts, replica,
queue and run time and the two UTC timestamps of every line, and numpy converts them
a column at a time (the timestamps as `datetime64`). A chunk where some line does not
match (written by something else, a torn line, a non-UTC time) falls back to
`json.loads` for those lines only. Parsing every line with `json.loads` and
`datetime.fromisoformat` took several times longer, and kept a dict per line alive
while it ran.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from ._record import RecordStatus

__all__ = ["STATUSES", "LineColumns", "read_lines"]

#: Status codes in the columns: the index in this tuple, -1 for a line that is no record.
STATUSES = tuple(s.value for s in RecordStatus)
_STATUS_BYTES = tuple(s.encode() for s in STATUSES)

_STR = rb'"[^"\\\n]*(?:\\.[^"\\\n]*)*"'
_NUM = rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# The UTC timestamps spacerun writes (`utc_now`), captured without their offset, which
# is what numpy parses (what it cannot parse is parsed one by one); any other offset
# takes the `json.loads` path.
_TIME = rb'"([0-9T:.-]{19,26})(?:\+00:00|Z)"'
# The greedy `[^\n]*` stops at the line's last `,"attempts":`: the top-level one, since
# whatever inputs or outputs hold comes before it (and a quote inside a string is escaped).
_LINE = re.compile(
    rb'^\{"key":' + _STR + rb',"status":"(ok|error|cancelled|timeout)","row":(-?\d+),'
    rb'[^\n]*,"attempts":(\d+),"causes":\[(?:' + _STR + rb"(?:," + _STR + rb")*)?\],"
    rb'"replica":(null|' + _STR + rb'),"queue_time":(null|' + _NUM + rb"),"
    rb'"run_time":(null|'
    + _NUM
    + rb'),"finished_at":'
    + _TIME
    + rb'(?:,"submitted_at":'
    + _TIME
    + rb")?\}$",
    re.MULTILINE,
)
_Match = tuple[bytes, bytes, bytes, bytes, bytes, bytes, bytes, bytes]


@dataclass(slots=True)
class LineColumns:
    """One entry per line of a chunk. Times are epoch seconds (NaN unknown): `submitted`
    is the first attempt's sending (or, in folders from before it was recorded, when the
    last attempt was queued); `replica` indexes `names` (-1: none)."""

    status: np.ndarray[Any, np.dtype[np.int8]]
    row: np.ndarray[Any, np.dtype[np.int64]]
    submitted: np.ndarray[Any, np.dtype[np.float64]]
    finished: np.ndarray[Any, np.dtype[np.float64]]
    #: Seconds, in float32 (shown to the millisecond): 8 bytes a line less.
    queue_time: np.ndarray[Any, np.dtype[np.float32]]
    run_time: np.ndarray[Any, np.dtype[np.float32]]
    replica: np.ndarray[Any, np.dtype[np.int32]]
    #: Attempts beyond the first, summed over the chunk.
    retries: int
    names: list[str]

    @classmethod
    def empty(cls, n: int) -> LineColumns:
        nan = np.full(n, np.nan)
        return cls(
            status=np.full(n, -1, dtype=np.int8),
            row=np.zeros(n, dtype=np.int64),
            submitted=nan,
            finished=nan.copy(),
            queue_time=nan.astype(np.float32),
            run_time=nan.astype(np.float32),
            replica=np.full(n, -1, dtype=np.int32),
            retries=0,
            names=[],
        )


def read_lines(chunk: bytes) -> LineColumns:
    """The columns of the lines of `chunk` (complete lines, without the last newline)."""
    found: list[_Match] = _LINE.findall(chunk)
    n = chunk.count(b"\n") + 1
    if len(found) == n:
        return _from_matches(found)
    columns = LineColumns.empty(n)
    matched: list[_Match] = []
    at: list[int] = []
    names: list[str | None] = [None] * n
    for index, line in enumerate(chunk.split(b"\n")):
        match = _LINE.fullmatch(line)
        if match is not None:
            matched.append(match.groups())  # type: ignore[arg-type]
            at.append(index)
        else:
            names[index] = _put_parsed(columns, index, line)
    if matched:
        fast = _from_matches(matched)
        where = np.array(at, dtype=np.int64)
        for name in ("status", "row", "submitted", "finished", "queue_time", "run_time"):
            getattr(columns, name)[where] = getattr(fast, name)
        for index, code in zip(at, fast.replica.tolist(), strict=True):
            names[index] = fast.names[code] if code >= 0 else None
        columns.retries += fast.retries
    local: dict[str, int] = {}
    columns.replica[:] = [
        -1 if name is None else local.setdefault(name, len(local)) for name in names
    ]
    columns.names = list(local)
    return columns


def _from_matches(found: list[_Match]) -> LineColumns:
    status_b, row_b, attempts_b, replica_b, queue_b, run_b, finished_b, submitted_b = (
        np.array(column) for column in zip(*found, strict=True)
    )
    status = np.full(len(found), -1, dtype=np.int8)
    for code, value in enumerate(_STATUS_BYTES):
        status[status_b == value] = code
    raw_names, first_at, replica = np.unique(replica_b, return_index=True, return_inverse=True)
    kept: list[str] = []
    codes = np.full(len(raw_names), -1, dtype=np.int32)
    for code in np.argsort(first_at).tolist():  # names in the order they first appear
        name = json.loads(raw_names[code])
        if name is not None:
            codes[code] = len(kept)
            kept.append(str(name))
    finished = _epochs(finished_b)
    queue_time, run_time = _numbers(queue_b), _numbers(run_b)
    attempts = _ints(attempts_b)
    return LineColumns(
        status=status,
        row=_ints(row_b),
        submitted=_submitted(_epochs(submitted_b), finished, queue_time, run_time),
        finished=finished,
        queue_time=queue_time,
        run_time=run_time,
        replica=codes[replica.reshape(-1)],
        retries=int(np.maximum(attempts - 1, 0).sum()),
        names=kept,
    )


def _submitted(
    submitted: np.ndarray[Any, Any],
    finished: np.ndarray[Any, Any],
    queue_time: np.ndarray[Any, Any],
    run_time: np.ndarray[Any, Any],
) -> np.ndarray[Any, Any]:
    """Older folders have no `submitted_at`: the last attempt's queueing is all there is
    (from the float32 times, so that the timeline finds it equal to the queueing)."""
    missing = np.isnan(submitted)
    if missing.any():
        started = finished[missing] - run_time[missing]
        queue = queue_time[missing]
        submitted[missing] = np.where(np.isnan(queue), started, started - queue)
    return submitted


def _ints(values: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    try:
        return values.astype(np.int64)
    except OverflowError:  # a row number beyond 64 bits: no place in the report
        return np.array([_int(int(v)) for v in values.tolist()], dtype=np.int64)


def _int(value: int) -> int:
    return value if -(2**63) <= value < 2**63 else 0


def _row(value: Any) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _int(value) if isinstance(value, int) and not isinstance(value, bool) else 0


def _numbers(values: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float32]]:
    values[values == b"null"] = b"nan"
    return values.astype(np.float64).astype(np.float32)


def _epochs(values: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """UTC timestamps without their offset (`b""`: unknown) as epoch seconds."""
    try:
        stamps = values.astype("datetime64[us]")
    except ValueError:  # an impossible date somewhere (month 13): one at a time
        return np.array([_epoch(v.decode() + "+00:00") for v in values.tolist()])
    seconds = stamps.astype(np.int64) / 1e6
    seconds[np.isnat(stamps)] = np.nan
    return seconds


def _put_parsed(columns: LineColumns, index: int, line: bytes) -> str | None:
    """Fill line `index` of `columns` from `line` parsed as JSON (left unknown if it is
    not a record); its replica's name."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    finished = _epoch(record.get("finished_at"))
    columns.queue_time[index] = _number(record.get("queue_time"))
    columns.run_time[index] = _number(record.get("run_time"))
    queue_time = float(columns.queue_time[index])
    started = finished - float(columns.run_time[index])
    submitted = _epoch(record.get("submitted_at"))
    if submitted != submitted:
        submitted = started if queue_time != queue_time else started - queue_time
    status = record.get("status")
    columns.status[index] = STATUSES.index(status) if status in STATUSES else -1
    columns.row[index] = _row(record.get("row"))
    columns.submitted[index] = submitted
    columns.finished[index] = finished
    attempts = record.get("attempts")
    columns.retries += max(attempts - 1, 0) if type(attempts) is int else 0
    name = record.get("replica")
    return None if name is None else str(name)


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
        else float("nan")
    )
