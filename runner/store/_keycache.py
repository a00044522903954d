"""`cache/keys.txt`, the key cache of fast resume (see `runner.resume`).

After a header naming the validation stamp, one fixed-width entry per submission in
expansion order: `<key> <files>\n`, the 20-hex-digit key and a 16-hex-digit digest of
the submission's local files (path, size, mtime), or dashes when it has none.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["CACHE_DIR", "CACHE_FORMAT", "KEYS_NAME", "KeyCache", "cache_dir", "files_digest"]

CACHE_DIR = "cache"
KEYS_NAME = "keys.txt"
CACHE_FORMAT = 1  # of both files in the cache folder
_KEY_LEN = 20
_FILES_LEN = 16
_NO_FILES = b"-" * _FILES_LEN
_ENTRY = _KEY_LEN + 1 + _FILES_LEN + 1
_ENTRIES = re.compile(rb"(?:[0-9a-f]{20} (?:[0-9a-f]{16}|-{16})\n)*")
_WITH_FILES = re.compile(rb"(?<= )[0-9a-f]{16}\n")
_FLUSH_EVERY = 4096


def cache_dir(run_dir: Path) -> Path:
    return run_dir / CACHE_DIR


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
    """

    def __init__(self, path: Path, header: bytes, blob: bytearray, fd: int) -> None:
        self.path = path
        self._header = len(header)
        self._blob = blob
        self._fd: int | None = fd
        self._stored = len(blob) // _ENTRY  # entries on disk
        self._pending = bytearray()

    @classmethod
    def open(cls, run_dir: Path, stamp: str) -> KeyCache:
        """Open the cache for `stamp`, keeping its valid entries; a cache made for another
        stamp is emptied."""
        path = cache_dir(run_dir) / KEYS_NAME
        path.parent.mkdir(parents=True, exist_ok=True)
        header = f"# spacerun key cache v{CACHE_FORMAT} {stamp}\n".encode()
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            with open(fd, "rb", closefd=False) as handle:
                data = handle.read()
            if data.startswith(header):
                body = memoryview(data)[len(header) :]
                valid = _ENTRIES.match(body).end()  # type: ignore[union-attr]
                blob = bytearray(body[:valid])
                os.ftruncate(fd, len(header) + valid)
            else:
                blob = bytearray()
                os.ftruncate(fd, 0)
                os.pwrite(fd, header, 0)
            return cls(path, header, blob, fd)
        except BaseException:
            os.close(fd)
            raise

    @property
    def count(self) -> int:
        """Submissions with an entry (written or pending)."""
        return len(self._blob) // _ENTRY

    @property
    def has_files(self) -> bool:
        """Whether any entry records local files."""
        return self._blob.count(b" " + _NO_FILES + b"\n") != self.count

    def key(self, index: int) -> str:
        start = index * _ENTRY
        return self._blob[start : start + _KEY_LEN].decode()

    def files(self, index: int) -> str | None:
        start = index * _ENTRY + _KEY_LEN + 1
        value = bytes(self._blob[start : start + _FILES_LEN])
        return None if value == _NO_FILES else value.decode()

    def keys(self, start: int = 0, end: int | None = None) -> list[str]:
        """The keys of entries `start` to `end` (default: all)."""
        end = self.count if end is None else min(end, self.count)
        if end <= start:
            return []
        text = self._blob[start * _ENTRY : end * _ENTRY].decode("ascii")
        return [line[:_KEY_LEN] for line in text[:-1].split("\n")]

    def rows_to_expand(self, per_row: int, rows: int, needed: Callable[[str], bool]) -> list[int]:
        """The rows among the first `rows` that must be expanded: a key is `needed`, or
        the row has local files to check. Works in chunks, so memory stays small."""
        out: set[int] = set()
        chunk = 65536 * per_row
        for first in range(0, rows * per_row, chunk):
            last = min(first + chunk, rows * per_row)
            keys = self.keys(first, last)
            for offset in itertools.compress(itertools.count(), map(needed, keys)):
                out.add((first + offset) // per_row)
        blob = bytes(self._blob[: rows * per_row * _ENTRY])
        for match in _WITH_FILES.finditer(blob):
            out.add(match.start() // _ENTRY // per_row)
        return sorted(out)

    def put(self, index: int, key: str, files: str | None) -> None:
        """Record submission `index`: appended if it is the next one, else corrected."""
        entry = f"{key} {files or _NO_FILES.decode()}\n".encode()
        if len(entry) != _ENTRY or index > self.count:
            return  # not a key of ours (or a gap): leave it to a later full expansion
        start = index * _ENTRY
        if index == self.count:
            self._blob += entry
            self._pending += entry
            if len(self._pending) >= _FLUSH_EVERY * _ENTRY:
                self.flush()
        elif self._blob[start : start + _ENTRY] != entry:
            self._blob[start : start + _ENTRY] = entry
            if index < self._stored and self._fd is not None:
                os.pwrite(self._fd, entry, self._header + start)
            else:
                self._pending[
                    start - self._stored * _ENTRY : start - self._stored * _ENTRY + _ENTRY
                ] = entry

    def flush(self) -> None:
        if self._fd is None or not self._pending:
            return
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
