"""Results streamed to `results.jsonl`, and the index of finished keys that makes resume work.

One line per finished submission, appended as it finishes. Each line starts with
`{"key":"<key>","status":"<status>",` so that the index (key -> latest status) is
rebuilt from a million lines by a regular expression over large blocks, without
parsing whole records. The line format is `runner.store._record`; the scan, `runner.store._scan`.
Closing the store saves the index (`runner.store._snapshot`): the next open reads it back and
scans only the lines written after it, as long as the part it covers is unchanged.

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

import logging
import os
import sys
import threading
import zlib
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from enum import Enum
from pathlib import Path
from types import TracebackType

import numpy as np
from numpy.typing import NDArray

from ._errors import (
    DuplicateResultError,
    ResultsError,
    RunFolderError,
    RunFolderLockedError,
    folder_errors,
)
from ._index import KeyIndex
from ._record import RecordStatus, ResultRecord, utc_now
from ._runfolder import RunDir, RunFolder
from ._scan import Scan, scan_results
from ._snapshot import Snapshot, read_snapshot, write_snapshot

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

#: Below this many keys a scan takes milliseconds: no index snapshot is kept.
SNAPSHOT_MIN_KEYS = 10_000


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

    def __init__(
        self,
        *,
        folder: RunFolder,
        fd: int,
        scan: Scan,
        durability: Durability,
        snapshot_current: bool = False,
    ) -> None:
        # Use `ResultsStore.open`; this only assembles what it prepared.
        self.folder = folder
        self.durability = Durability(durability)
        self.corrupt_lines = scan.corrupt
        self.repaired_bytes = len(scan.torn)
        self._fd: int | None = fd
        self._size = scan.end_offset
        self._status = scan.status
        self._lines = scan.lines
        self._written = 0
        self._lock = threading.Lock()
        # The CRC-32 of the file so far, for the index snapshot written on close.
        self._crc = scan.crc
        self._snapshot_current = snapshot_current

    @classmethod
    def open(
        cls,
        run_dir: RunDir,
        *,
        durability: Durability = Durability.NONE,
    ) -> ResultsStore:
        """Open (creating if needed) the run folder's results for appending."""
        folder = RunFolder.at(run_dir)
        path = folder.results_path
        with folder_errors("open the results file", path):
            folder.root.mkdir(parents=True, exist_ok=True)
            flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(path, flags, 0o644)
            try:
                _lock_exclusive(fd, path)
                scan, current = _scan(folder)
                if scan.torn:
                    _repair_torn_tail(fd, folder, scan)
                return cls(
                    folder=folder,
                    fd=fd,
                    scan=scan,
                    durability=durability,
                    snapshot_current=current and not scan.torn,
                )
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
            with folder_errors("write a record to", self.folder.results_path):
                self._write_line(fd, line)
            self._status[record.key] = status  # counts per status follow
            self._lines += 1

    def is_done(self, key: str) -> bool:
        """Whether `key` is recorded ok (and so is skipped on resume)."""
        return self._status.get(key) is RecordStatus.OK

    def status_of(self, key: str) -> RecordStatus | None:
        """The status that counts for `key`, or None if it has no record."""
        return self._status.get(key)

    def status_codes(self, chars: NDArray[np.uint8]) -> NDArray[np.int8]:
        """The status that counts of each key of an (n, 20) array of their ASCII bytes, as
        its position in `STATUS_CODES`, or `NO_STATUS`: a bulk `status_of`."""
        with self._lock:
            return self._status.codes_of_chars(chars)

    def ok_keys(self) -> AbstractSet[str]:
        """A live, read-only set view of the keys recorded ok."""
        return _OkKeys(self._status)

    def counts(self) -> dict[RecordStatus, int]:
        """The number of keys per status (the status that counts for each key)."""
        counts = self._status.counts
        return {status: counts[status] for status in RecordStatus}

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
                    with folder_errors("save the results to", self.folder.results_path):
                        os.fsync(fd)
                self._write_snapshot()
            finally:
                os.close(fd)

    def _write_snapshot(self) -> None:
        """Save the index for the next open, while the lock is still held. Failing to is
        only slower next time: logged, never raised."""
        if self._snapshot_current and not self._written:
            return
        if len(self._status) < SNAPSHOT_MIN_KEYS or self._crc is None:
            return
        snapshot = Snapshot(self._status, self._size, self._crc, self._lines, self.corrupt_lines)
        try:
            write_snapshot(self.folder.root, snapshot)
        except (OSError, RunFolderError) as exc:
            logger.warning("could not save the results index of %s: %s", self.folder.root, exc)

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
        if self._crc is not None:
            self._crc = zlib.crc32(line, self._crc)
        if self.durability is Durability.LINE:
            _datasync(fd)

    def _cut_back(self, fd: int) -> None:
        try:
            os.ftruncate(fd, self._size)
        except OSError as exc:
            # The file's tail is unknown now: stop writing; reopening repairs it.
            self._fd = None
            os.close(fd)
            logger.error(
                "could not undo a partial write to %s (%s); the next run repairs it",
                self.folder.results_path,
                exc.strerror or exc,
            )


class _OkKeys(AbstractSet[str]):
    __slots__ = ("_status",)

    def __init__(self, status: KeyIndex) -> None:
        self._status = status

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._status.get(key) is RecordStatus.OK

    def __iter__(self) -> Iterator[str]:
        return (key for key, status in self._status.items() if status is RecordStatus.OK)

    def __len__(self) -> int:
        return self._status.counts[RecordStatus.OK]


def _scan(folder: RunFolder) -> tuple[Scan, bool]:
    """The index of the folder's results, from its snapshot where that still holds (then
    only the lines after it are scanned); whether the snapshot covered every line."""
    path = folder.results_path
    snapshot = read_snapshot(folder.root, path)
    if snapshot is None:
        return scan_results(path, crc=0), False
    tail = scan_results(path, start=snapshot.covered, first_line=snapshot.lines, crc=snapshot.crc)
    snapshot.index.update_from(tail.status)
    lines, corrupt = snapshot.lines + tail.lines, snapshot.corrupt + tail.corrupt
    merged = Scan(
        snapshot.index, lines, corrupt, tail.torn, tail.end_offset, tail.counting, tail.crc
    )
    return merged, tail.lines == 0


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
