"""Results streamed to `results.jsonl`, and the index of finished keys that makes resume work.

One line per finished submission, appended as it finishes. Each line starts with
`{"key":"<key>","status":"<status>",` so that the index (key -> latest status) is
rebuilt from a million lines by a regular expression over large blocks, without
parsing whole records.

Durability: every record is one `os.write` of the full line on an `O_APPEND`
descriptor, with no Python buffering. A killed process (kill -9, Ctrl-C, crash)
loses at most the line being written; a torn last line is cut away (and kept in
`results.jsonl.torn`) the next time the folder is opened for writing. See
`Durability` for the power-loss trade-off.

The record that counts for a key is its `ok` record if it has one, else its
latest record. Once a key is ok it is final: `ResultsStore.append` refuses any
further record for it, so a key is written ok at most once across resumes.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import RunnerError
from .runfolder import RunDir, RunFolder

if sys.platform != "win32":
    import fcntl

__all__ = [
    "DuplicateResultError",
    "Durability",
    "RecordStatus",
    "ResultRecord",
    "ResultsError",
    "ResultsStore",
    "RunFolderLockedError",
    "utc_now",
]

logger = logging.getLogger(__name__)


class RecordStatus(str, Enum):
    """How a submission ended."""

    OK = "ok"
    """The app returned a result; `outputs` holds it. Skipped on resume."""
    ERROR = "error"
    """It failed for good (app error, or retries exhausted); `error_type` says why."""
    CANCELLED = "cancelled"
    """The run was interrupted before it finished (Ctrl-C); submitted again on resume."""
    TIMEOUT = "timeout"
    """It did not finish within the job timeout, after all attempts."""


class Durability(str, Enum):
    """When appended lines are forced to disk.

    `none` (default): lines go to the OS page cache at once, so nothing written is
    lost if the process dies; an OS crash or power loss can lose the last seconds
    of lines, and those submissions simply run again on resume. The file is
    fsynced once on `close()`. `line`: `fdatasync` after every record, which
    survives power loss but costs a disk flush per record (about 1-10 ms on SSDs,
    more on disks) and blocks the caller: call `append` through
    `anyio.to_thread.run_sync` with it.
    """

    NONE = "none"
    LINE = "line"


class ResultsError(RunnerError):
    """A results file cannot be written as asked."""


class DuplicateResultError(ResultsError):
    """A record was appended for a key that is already recorded ok."""


class RunFolderLockedError(ResultsError):
    """Another process has the run folder open for writing."""


def utc_now() -> str:
    """The current time as ISO 8601 in UTC, as `finished_at` stores it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultRecord:
    """One finished submission, as one line of `results.jsonl`.

    `inputs` holds file inputs as their paths; `outputs` is keyed by the endpoint's
    return labels, with files as paths relative to the run folder. `causes` has
    one short cause per failed attempt.
    """

    key: str
    row: int
    status: RecordStatus
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error_type: str | None = None
    error_message: str | None = None
    attempts: int = 1
    causes: tuple[str, ...] = ()
    replica: str | None = None
    queue_time: float | None = None
    run_time: float | None = None
    finished_at: str = field(default_factory=utc_now)

    def to_line(self) -> bytes:
        """The JSON line (with its newline), starting `{"key":...,"status":...,`."""
        body = {
            "row": self.row,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "attempts": self.attempts,
            "causes": list(self.causes),
            "replica": self.replica,
            "queue_time": self.queue_time,
            "run_time": self.run_time,
            "finished_at": self.finished_at,
        }
        rest = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=_json_default)
        head = f'{{"key":{json.dumps(self.key)},"status":"{RecordStatus(self.status).value}",'
        return (head + rest[1:] + "\n").encode("utf-8")

    @classmethod
    def from_line(cls, line: bytes | str) -> ResultRecord:
        """Parse one line of `results.jsonl`. Raises ValueError if it is not a record."""
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError("a results line must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResultRecord:
        """Build a record from its JSON object; unknown fields are ignored."""
        try:
            return cls(
                key=str(data["key"]),
                row=int(data["row"]),
                status=RecordStatus(data["status"]),
                inputs=dict(data.get("inputs") or {}),
                outputs=data.get("outputs"),
                error_type=data.get("error_type"),
                error_message=data.get("error_message"),
                attempts=int(data.get("attempts", 1)),
                causes=tuple(data.get("causes") or ()),
                replica=data.get("replica"),
                queue_time=data.get("queue_time"),
                run_time=data.get("run_time"),
                finished_at=str(data.get("finished_at", "")),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a results record: {exc!r}") from exc


def _json_default(value: object) -> object:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} in a result is not JSON serialisable")


class ResultsStore:
    """The writer of one run folder's `results.jsonl` and the index of its keys.

    Usage:

        with ResultsStore.open("runs/demo") as store:
            if not store.is_done(key):
                ...
                store.append(ResultRecord(key=key, row=row, status=RecordStatus.OK, ...))

    Opening takes an exclusive lock on the results file (`RunFolderLockedError`
    if another process holds it), repairs a torn last line and builds the index.
    `append` is thread-safe.
    """

    def __init__(self, *, folder: RunFolder, fd: int, scan: Scan, durability: Durability) -> None:
        # Use `ResultsStore.open`; this only assembles what it prepared.
        self.folder = folder
        self.durability = Durability(durability)
        self.corrupt_lines = scan.corrupt
        self.repaired_bytes = len(scan.torn)
        self._fd: int | None = fd
        self._size = scan.end_offset
        self._status = scan.status
        self._counts: Counter[RecordStatus] = Counter(scan.status.values())
        self._lines = scan.lines
        self._written = 0
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        run_dir: RunDir,
        *,
        durability: Durability = Durability.NONE,
    ) -> ResultsStore:
        """Open (creating if needed) the run folder's results for appending."""
        folder = RunFolder.at(run_dir)
        folder.root.mkdir(parents=True, exist_ok=True)
        path = folder.results_path
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o644)
        try:
            _lock_exclusive(fd, path)
            scan = scan_results(path)
            if scan.torn:
                _repair_torn_tail(fd, folder, scan)
            return cls(folder=folder, fd=fd, scan=scan, durability=durability)
        except BaseException:
            os.close(fd)
            raise

    def append(self, record: ResultRecord) -> None:
        """Append `record` as one line, durable against a crash of this process.

        Raises DuplicateResultError if the key is already recorded ok, and
        ResultsError if the store is closed.
        """
        line = record.to_line()
        status = RecordStatus(record.status)
        with self._lock:
            fd = self._require_open()
            previous = self._status.get(record.key)
            if previous is RecordStatus.OK:
                raise DuplicateResultError(
                    f"key {record.key!r} is already recorded ok in {self.folder.results_path}; "
                    "a finished submission is never recorded twice"
                )
            self._write_line(fd, line)
            if previous is not None:
                self._counts[previous] -= 1
            self._status[record.key] = status
            self._counts[status] += 1
            self._lines += 1

    def is_done(self, key: str) -> bool:
        """Whether `key` is recorded ok (and so is skipped on resume)."""
        return self._status.get(key) is RecordStatus.OK

    def status_of(self, key: str) -> RecordStatus | None:
        """The status that counts for `key`, or None if it has no record."""
        return self._status.get(key)

    def ok_keys(self) -> AbstractSet[str]:
        """A live, read-only set view of the keys recorded ok."""
        return _OkKeys(self._status, self._counts)

    def counts(self) -> dict[RecordStatus, int]:
        """The number of keys per status (the status that counts for each key)."""
        return {status: self._counts[status] for status in RecordStatus}

    @property
    def lines(self) -> int:
        """The number of records in the file, superseded ones included."""
        return self._lines

    def __len__(self) -> int:
        return len(self._status)

    def close(self) -> None:
        """Flush what was written to disk and release the lock. Idempotent."""
        with self._lock:
            fd, self._fd = self._fd, None
            if fd is None:
                return
            try:
                if self._written and self.durability is Durability.NONE:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        counts = ", ".join(f"{s.value}: {n}" for s, n in self.counts().items())
        state = "open" if self._fd is not None else "closed"
        return f"<ResultsStore {self.folder.root} [{state} | {counts}]>"

    def _require_open(self) -> int:
        if self._fd is None:
            raise ResultsError(f"the results store of {self.folder.root} is closed")
        return self._fd

    def _write_line(self, fd: int, line: bytes) -> None:
        view = memoryview(line)
        try:
            # A regular file takes the whole line in one write; the loop only
            # matters if the disk fills up mid-line.
            while view:
                view = view[os.write(fd, view) :]
        except BaseException:
            # Leave no partial line behind: the next line would be glued to it.
            self._cut_back(fd)
            raise
        self._size += len(line)
        self._written += 1
        if self.durability is Durability.LINE:
            _datasync(fd)

    def _cut_back(self, fd: int) -> None:
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            # The file's tail is unknown now: stop writing; reopening repairs it.
            self._fd = None
            os.close(fd)
            logger.exception("could not undo a partial write to %s", self.folder.results_path)


class _OkKeys(AbstractSet[str]):
    __slots__ = ("_counts", "_status")

    def __init__(self, status: dict[str, RecordStatus], counts: Counter[RecordStatus]) -> None:
        self._status = status
        self._counts = counts

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._status.get(key) is RecordStatus.OK

    def __iter__(self) -> Iterator[str]:
        return (key for key, status in self._status.items() if status is RecordStatus.OK)

    def __len__(self) -> int:
        return self._counts[RecordStatus.OK]


def _lock_exclusive(fd: int, path: Path) -> None:
    if sys.platform == "win32":  # no advisory locks there; one writer is on the user
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise RunFolderLockedError(
            f"{path} is being written by another process; wait for that run to end "
            "or use another run folder"
        ) from None


def _datasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
    sync(fd)


def _repair_torn_tail(fd: int, folder: RunFolder, scan: Scan) -> None:
    # Keep the torn bytes for the user before cutting them away, so a crash
    # between the two steps loses nothing (the copy may then be made twice).
    with open(folder.torn_path, "ab") as torn:
        torn.write(scan.torn + b"\n")
        torn.flush()
        os.fsync(torn.fileno())
    os.ftruncate(fd, scan.end_offset)
    os.fsync(fd)
    logger.warning(
        "%s ended with a torn line (%d bytes, the process was killed mid-write); "
        "cut it away and kept a copy in %s",
        folder.results_path,
        len(scan.torn),
        folder.torn_path,
    )


# --- Scanning -----------------------------------------------------------------
#
# The file is memory-mapped and searched in blocks of complete lines: no copy of
# the data into Python objects except the keys themselves. The regular
# expressions match a newline followed by the fixed line prefix, so the engine
# looks for a literal and skips the rest of each line quickly; the first line of
# the file, which has no newline before it, is matched separately.

_BLOCK_SIZE = 16 << 20
_STATUS_OF = {status.value.encode(): status for status in RecordStatus}
# Keys without escapes take the fast path; a block with any other line is parsed line by line.
_RECORD = rb'\{"key":"([^"\\\n]*)","status":"(ok|error|cancelled|timeout)",'
_RECORD_AFTER_NL = re.compile(b"\n" + _RECORD)
_RECORD_AT = re.compile(_RECORD)
_MAX_CORRUPT_WARNINGS = 5


@contextmanager
def mapped(path: Path) -> Iterator[mmap.mmap | bytes]:
    """The file at `path` mapped read-only (`b""` if it is missing or empty)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the map
    except FileNotFoundError:
        yield b""
        return
    with handle:
        if os.fstat(handle.fileno()).st_size == 0:
            yield b""
            return
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
            yield buf


def find_all(
    after_nl: re.Pattern[bytes], at: re.Pattern[bytes], buf: mmap.mmap | bytes, start: int, end: int
) -> list[Any]:
    """`findall` of a line pattern over the lines in `buf[start:end]`."""
    found: list[Any] = after_nl.findall(buf, max(start - 1, 0), end)
    if start == 0 and (first := at.match(buf, 0, end)):
        found.insert(0, first.groups() if at.groups > 1 else first[at.groups])
    return found


@dataclass(frozen=True, slots=True)
class Block:
    """Complete lines `buf[start:end]` (`buf[end]` is a newline), from line `first_line`."""

    buf: mmap.mmap | bytes
    start: int
    end: int
    first_line: int
    n_lines: int

    def lines(self) -> list[bytes]:
        return self.buf[self.start : self.end].split(b"\n")


def block_bounds(buf: mmap.mmap | bytes, stop: int) -> list[tuple[int, int]]:
    """(start, end) of blocks of whole lines covering `buf[:stop]`; `stop` follows a newline."""
    block_size = _BLOCK_SIZE  # read at call time so tests can make blocks small
    bounds = []
    start = 0
    while start < stop:
        end = buf.rfind(b"\n", start, min(start + block_size, stop))
        if end < 0:  # a line longer than a block
            end = buf.find(b"\n", start, stop)
        bounds.append((start, end))
        start = end + 1
    return bounds


def blocks(buf: mmap.mmap | bytes, stop: int) -> Iterator[Block]:
    """The blocks of `buf[:stop]` in order, dropping each from memory once it is used."""
    first_line = 0
    for start, end in block_bounds(buf, stop):
        n_lines = buf[start : end + 1].count(b"\n")
        yield Block(buf, start, end, first_line, n_lines)
        first_line += n_lines
        release(buf, start, end + 1)


def release(buf: mmap.mmap | bytes, start: int, stop: int) -> None:
    """Let the OS drop the pages of `buf[start:stop]` from this process's memory.

    They stay in the OS file cache; they just stop counting towards our memory,
    so scanning a large file does not grow the process by the file's size.
    """
    if isinstance(buf, mmap.mmap) and hasattr(mmap, "MADV_DONTNEED"):
        page = start - start % mmap.PAGESIZE
        buf.madvise(mmap.MADV_DONTNEED, page, stop - page)


@dataclass(slots=True)
class Scan:
    """What a pass over a results file found."""

    status: dict[str, RecordStatus]  # key -> the status that counts
    line_of: dict[str, int] | None  # key -> ordinal of the line that counts (if asked)
    lines: int  # complete lines
    corrupt: int  # complete lines that are not records
    torn: bytes  # bytes after the last newline
    end_offset: int  # file offset just past the last complete line


def scan_results(path: Path, *, want_lines: bool = False) -> Scan:
    """Index a results file: key -> the status that counts (and, if asked, its line).

    Read-only: a torn tail is reported in `torn`, not repaired.
    """
    status: dict[str, RecordStatus] = {}
    line_of: dict[str, int] | None = {} if want_lines else None
    lines = corrupt = ok_lines = 0
    with mapped(path) as buf:
        end_offset = buf.rfind(b"\n") + 1
        torn = bytes(buf[end_offset:])
        for block in blocks(buf, end_offset):
            keys, stats, ordinals, bad = _parse_block(block)
            # Latest wins, at C speed; the ok-is-final rule is checked just below.
            status.update(zip(keys, map(_STATUS_OF.__getitem__, stats), strict=True))
            if line_of is not None:
                line_of.update(zip(keys, ordinals, strict=True))
            ok_lines += stats.count(b"ok")
            lines, corrupt = lines + block.n_lines, corrupt + bad
    scan = Scan(status, line_of, lines, corrupt, torn, end_offset)
    if Counter(status.values())[RecordStatus.OK] != ok_lines:
        # A key was ok twice, or had a record after its ok: only a file written by
        # something else than ResultsStore gets here. Redo it exactly, slowly.
        _rescan_ok_final(scan, path)
    return scan


def _rescan_ok_final(scan: Scan, path: Path) -> None:
    status: dict[str, RecordStatus] = {}
    line_of: dict[str, int] = {}
    duplicates = 0
    with mapped(path) as buf:
        for block in blocks(buf, scan.end_offset):
            keys, stats, ordinals, _ = _parse_block(block, warn=False)
            for key, stat, ordinal in zip(keys, stats, ordinals, strict=True):
                if status.get(key) is RecordStatus.OK:
                    duplicates += stat == b"ok"
                    continue
                status[key], line_of[key] = _STATUS_OF[stat], ordinal
    if duplicates:
        logger.warning("%s has %d extra ok records; the first ok of a key counts", path, duplicates)
    scan.status = status
    if scan.line_of is not None:
        scan.line_of = line_of


_Parsed = tuple[list[str], list[bytes], Sequence[int], int]


def _parse_block(block: Block, *, warn: bool = True) -> _Parsed:
    """Keys, status bytes and ordinals of the records in `block`; how many lines are not."""
    pairs = find_all(_RECORD_AFTER_NL, _RECORD_AT, block.buf, block.start, block.end)
    if len(pairs) != block.n_lines:
        return _parse_block_slowly(block, warn=warn)
    keys = [key.decode() for key, _ in pairs]
    stats = [stat for _, stat in pairs]
    return keys, stats, range(block.first_line, block.first_line + block.n_lines), 0


def _parse_block_slowly(block: Block, *, warn: bool) -> _Parsed:
    keys: list[str] = []
    stats: list[bytes] = []
    ordinals: list[int] = []
    corrupt = 0
    for ordinal, line in enumerate(block.lines(), start=block.first_line):
        parsed = _parse_prefix(line)
        if parsed is None:
            corrupt += 1
            if warn and corrupt <= _MAX_CORRUPT_WARNINGS:
                logger.warning("results line %d is not a record, ignored: %.80r", ordinal + 1, line)
            continue
        keys.append(parsed[0])
        stats.append(parsed[1])
        ordinals.append(ordinal)
    return keys, stats, ordinals, corrupt


def _parse_prefix(line: bytes) -> tuple[str, bytes] | None:
    match = _RECORD_AT.match(line)
    if match:
        return match[1].decode(), match[2]
    try:  # keys with escapes (quotes, non-ASCII) are valid, just slower
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return None
    stat = str(data.get("status", "")).encode()
    return (data["key"], stat) if stat in _STATUS_OF else None
