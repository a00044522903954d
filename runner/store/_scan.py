"""Reading `results.jsonl` back fast: the index of keys, and blocks of whole lines.

The file is memory-mapped and searched in blocks of complete lines: no copy of
the data into Python objects except the keys themselves. The regular
expressions match a newline followed by the fixed line prefix, so the engine
looks for a literal and skips the rest of each line quickly; the first line of
the file, which has no newline before it, is matched separately.

Everything here only reads; `ResultsStore.open` repairs a torn tail that a scan reports.
"""

from __future__ import annotations

import json
import logging
import mmap
import os
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._record import RecordStatus

__all__ = [
    "Block",
    "Scan",
    "block_bounds",
    "blocks",
    "find_all",
    "mapped",
    "release",
    "scan_results",
]

# Under the name of the public module these warnings were always logged as.
logger = logging.getLogger("runner.results")

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
