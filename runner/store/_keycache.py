"""`cache/keys.txt`, the key cache of fast resume (see `runner.run._resume`).

After a header naming the validation stamp, one fixed-width entry per submission in
expansion order: `<key> <files>\n`, the 20-hex-digit key and a 16-hex-digit digest of
the submission's local files (path, size, mtime), or dashes when it has none.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ._errors import folder_errors
from ._runfolder import RunFolder

__all__ = [
    "CACHE_FORMAT",
    "KeyCache",
    "KeyMask",
    "files_digest",
    "mask_of",
]

#: Which of some keys, given as an (n, 20) array of their ASCII bytes, are wanted.
KeyMask = Callable[[NDArray[np.uint8]], NDArray[np.bool_]]

CACHE_FORMAT = 1  # of both files in the cache folder
_KEY_LEN = 20
_FILES_LEN = 16
_NO_FILES = b"-" * _FILES_LEN
_ENTRY = _KEY_LEN + 1 + _FILES_LEN + 1
_CLASS_OF = bytes(
    ord("h") if chr(byte) in "0123456789abcdef" else byte if chr(byte) in " -\n" else ord("?")
    for byte in range(256)
)
_GOOD = (
    b"h" * _KEY_LEN + b" " + b"h" * _FILES_LEN + b"\n",
    b"h" * _KEY_LEN + b" " + b"-" * _FILES_LEN + b"\n",
)
_WITH_FILES = re.compile(rb"(?<= )[0-9a-f]{16}\n")
_FLUSH_EVERY = 4096


def mask_of(wanted: Callable[[str], bool]) -> KeyMask:
    """The `KeyMask` of a test on one key at a time."""

    def mask(chars: NDArray[np.uint8]) -> NDArray[np.bool_]:
        keys = chars.tobytes().decode("ascii")
        return np.fromiter(
            (wanted(keys[at : at + _KEY_LEN]) for at in range(0, len(keys), _KEY_LEN)),
            dtype=np.bool_,
            count=len(chars),
        )

    return mask


def files_digest(paths: Sequence[str]) -> str | None:
    """A short digest of the paths, sizes and mtimes of `paths` (None when empty).
    Raises OSError if a file cannot be stat'ed."""
    if not paths:
        return None
    sha = hashlib.sha256()
    for path in paths:
        info = os.stat(path)
        sha.update(
            f"{path}\0{info.st_size}\0{info.st_mtime_ns}\0".encode("utf-8", "surrogateescape")
        )
    return sha.hexdigest()[:_FILES_LEN]


class KeyCache:
    """`cache/keys.txt`: the key (and local files' digest) of each submission by position.

    Appends are buffered and written in batches; a torn or garbled tail (kill -9) is
    ignored and overwritten. Entries are fixed-width, so one can be corrected in place.
    Only the batch not yet written is held in memory; everything else is read back from
    the file (the OS's page cache), as 38 bytes a submission would be 38 MB of this
    process at a million rows.
    """

    def __init__(self, path: Path, header: bytes, stored: int, fd: int) -> None:
        self.path = path
        self._header = len(header)
        self._fd: int | None = fd
        self._stored = stored  # entries on disk
        self._pending = bytearray()

    @classmethod
    def open(cls, run_dir: Path, stamp: str) -> KeyCache:
        """Open the cache for `stamp`, keeping its valid entries; a cache made for another
        stamp is emptied."""
        path = RunFolder.at(run_dir).keys_path
        with folder_errors("open the key cache", path):
            return cls._open(path, stamp)

    @classmethod
    def _open(cls, path: Path, stamp: str) -> KeyCache:
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"# spacerun key cache v{CACHE_FORMAT} {stamp}\n".encode()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            if os.pread(fd, len(header), 0) == header:
                valid = _valid_length(fd, len(header))
                os.ftruncate(fd, len(header) + valid)
            else:
                valid = 0
                os.ftruncate(fd, 0)
                os.pwrite(fd, header, 0)
            return cls(path, header, valid // _ENTRY, fd)
        except BaseException:
            os.close(fd)
            raise

    @property
    def count(self) -> int:
        """Submissions with an entry (written or pending)."""
        return self._stored + len(self._pending) // _ENTRY

    @property
    def has_files(self) -> bool:
        """Whether any entry records local files."""
        return any(_WITH_FILES.search(chunk) is not None for chunk in self._chunks(0, self.count))

    def key(self, index: int) -> str:
        return self._read(index, index + 1)[:_KEY_LEN].decode()

    def files(self, index: int) -> str | None:
        value = self._read(index, index + 1)[_KEY_LEN + 1 : _KEY_LEN + 1 + _FILES_LEN]
        return None if value == _NO_FILES else value.decode()

    def keys(self, start: int = 0, end: int | None = None) -> list[str]:
        """The keys of entries `start` to `end` (default: all)."""
        end = self.count if end is None else min(end, self.count)
        if end <= start:
            return []
        text = self._read(start, end).decode("ascii")
        return [line[:_KEY_LEN] for line in text[:-1].split("\n")]

    def key_chars(self, start: int = 0, end: int | None = None) -> NDArray[np.uint8]:
        """The keys of entries `start` to `end` (default: all) as an (n, 20) array of their
        ASCII bytes, for bulk lookups."""
        end = self.count if end is None else min(end, self.count)
        data = self._read(start, end) if end > start else b""
        return np.frombuffer(data, dtype=np.uint8).reshape(-1, _ENTRY)[:, :_KEY_LEN]

    def rows_to_expand(self, per_row: int, rows: int, needed: KeyMask) -> list[int]:
        """The rows among the first `rows` that must be expanded: a key is `needed`, or
        the row has local files to check. Works in chunks, so memory stays small."""
        out: list[NDArray[np.intp]] = []
        chunk = 262144 * per_row
        for first in range(0, rows * per_row, chunk):
            last = min(first + chunk, rows * per_row)
            data = self._read(first, last)
            entries = np.frombuffer(data, dtype=np.uint8).reshape(-1, _ENTRY)
            wanted = needed(entries[:, :_KEY_LEN])
            # An entry with local files (no dash where the digest starts) is checked too.
            wanted |= entries[:, _KEY_LEN + 1] != _NO_FILES[0]
            out.append((first + np.flatnonzero(wanted)) // per_row)
        return np.unique(np.concatenate(out)).tolist() if out else []

    def put(self, index: int, key: str, files: str | None) -> None:
        """Record submission `index`: appended if it is the next one, else corrected."""
        entry = f"{key} {files or _NO_FILES.decode()}\n".encode()
        count = self.count
        if len(entry) != _ENTRY or index > count:
            return  # not a key of ours (or a gap): leave it to a later full expansion
        if index == count:
            self._pending += entry
            if len(self._pending) >= _FLUSH_EVERY * _ENTRY:
                self.flush()
        elif self._read(index, index + 1) != entry:
            if index < self._stored:
                with folder_errors("write the key cache", self.path):
                    os.pwrite(self._require_open(), entry, self._header + index * _ENTRY)
            else:
                start = (index - self._stored) * _ENTRY
                self._pending[start : start + _ENTRY] = entry

    def flush(self) -> None:
        if self._fd is None or not self._pending:
            return
        with folder_errors("write the key cache", self.path):
            os.pwrite(self._fd, bytes(self._pending), self._header + self._stored * _ENTRY)
        self._stored += len(self._pending) // _ENTRY
        self._pending.clear()

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            finally:
                os.close(self._fd)
                self._fd = None

    def _require_open(self) -> int:
        if self._fd is None:
            raise ValueError(f"the key cache {self.path} is closed")
        return self._fd

    def _read(self, start: int, end: int) -> bytes:
        """Entries `start` to `end` (within `count`), from the file and the pending batch."""
        data = b""
        if start < self._stored:
            stop = min(end, self._stored)
            with folder_errors("read the key cache", self.path):
                data = _pread_all(
                    self._require_open(), (stop - start) * _ENTRY, self._header + start * _ENTRY
                )
        if end > self._stored:
            first = max(start, self._stored) - self._stored
            data += bytes(self._pending[first * _ENTRY : (end - self._stored) * _ENTRY])
        return data

    def _chunks(self, start: int, end: int, size: int = 65536) -> Iterator[bytes]:
        for first in range(start, end, size):
            yield self._read(first, min(first + size, end))


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    parts = []
    while size > 0:
        part = os.pread(fd, size, offset)
        if not part:
            break
        parts.append(part)
        size -= len(part)
        offset += len(part)
    return b"".join(parts)


def _valid_length(fd: int, header: int) -> int:
    """Bytes of whole, well-formed entries after the header, read in chunks."""
    valid = 0
    chunk = 262144 * _ENTRY
    while True:
        data = os.pread(fd, chunk, header + valid)
        whole = len(data) - len(data) % _ENTRY
        good = _good_entries(np.frombuffer(data, dtype=np.uint8, count=whole).reshape(-1, _ENTRY))
        valid += good * _ENTRY
        if good * _ENTRY < chunk or not data:
            return valid


def _good_entries(entries: NDArray[np.uint8]) -> int:
    """How many entries from the first are `<20 hex digits> <16 hex digits or dashes>\\n`.

    Each byte is replaced by its class (hex digit, dash, space, newline, other) at C
    speed; then a good entry is one of two 38-byte strings."""
    rows = np.frombuffer(entries.tobytes().translate(_CLASS_OF), dtype=f"S{_ENTRY}")
    bad = np.flatnonzero((rows != _GOOD[0]) & (rows != _GOOD[1]))
    return int(bad[0]) if len(bad) else len(entries)
