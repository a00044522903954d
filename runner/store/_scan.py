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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._index import KeyIndex, decode_key
from ._record import RecordStatus

__all__ = [
    "Block",
    "Scan",
    "block_bounds",
    "blocks",
    "counting_lines",
    "find_all",
    "mapped",
    "release",
    "scan_results",
]

# Under the name of the public module these warnings were always logged as.
logger = logging.getLogger("runner.results")

_BLOCK_SIZE = 16 << 20
_STATUS_OF = {status.value.encode(): status for status in RecordStatus}
# A whole line as `ResultRecord.to_line` writes it: its key (without escapes), its status,
# and its last field, `finished_at`, closing the object. A block whose every line matches
# (and holds no second record start) takes the fast path; any other block is parsed line
# by line with `json.loads`, so a torn or joined line never counts as a record.
_START = b'{"key":"'
_RECORD = (
    rb'\{"key":"([^"\\\n]*)","status":"(ok|error|cancelled|timeout)",'
    rb'[^\n]*,"finished_at":"[^"\n]*"\}(?=\n|\Z)'
)
_RECORD_AFTER_NL = re.compile(b"\n" + _RECORD)
_RECORD_AT = re.compile(_RECORD)
_MAX_CORRUPT_WARNINGS = 20


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

    status: KeyIndex  # key -> the status that counts
    line_of: dict[str, int] | None  # key -> ordinal of the line that counts (if asked)
    lines: int  # complete lines
    corrupt: int  # complete lines that are not records
    torn: bytes  # bytes after the last newline
    end_offset: int  # file offset just past the last complete line
    #: Every key's record that counts is its last one (true of files ResultsStore wrote).
    last_counts: bool = True


def scan_results(path: Path, *, want_lines: bool = False) -> Scan:
    """Index a results file: key -> the status that counts (and, if asked, its line).

    Read-only: a torn tail is reported in `torn`, not repaired.
    """
    status = KeyIndex()
    line_of: dict[str, int] | None = {} if want_lines else None
    lines = corrupt = ok_lines = 0
    with mapped(path) as buf:
        end_offset = buf.rfind(b"\n") + 1
        torn = bytes(buf[end_offset:])
        for block in blocks(buf, end_offset):
            keys, stats, ordinals, bad = _parse_block(block)
            # Latest wins; the ok-is-final rule is checked just below.
            status.update_from_bytes(keys, stats)
            if line_of is not None:
                line_of.update(zip(map(decode_key, keys), ordinals, strict=True))
            ok_lines += stats.count(b"ok")
            lines, corrupt = lines + block.n_lines, corrupt + bad
    scan = Scan(status, line_of, lines, corrupt, torn, end_offset)
    if status.counts[RecordStatus.OK] != ok_lines:
        # A key was ok twice, or had a record after its ok: only a file written by
        # something else than ResultsStore gets here. Redo it exactly, slowly.
        _rescan_ok_final(scan, path)
        scan.last_counts = False
    return scan


def counting_lines(path: Path, scan: Scan) -> bytearray:
    """One byte per complete line of the results file `scan` was made of: 1 where the line
    is the record that counts for its key, else 0.

    A key's record that counts is its last one (`scan.last_counts`), so the file is read
    backwards keeping only a compact set of the keys met (~25 bytes a key): a dict of
    every key to its line took ~140 MB at a million lines. A file where it is not the
    last (not written by ResultsStore) is scanned again for the lines, exactly.
    """
    counting = bytearray(scan.lines)
    if not scan.last_counts:
        exact = scan_results(path, want_lines=True).line_of
        assert exact is not None
        for ordinal in exact.values():
            counting[ordinal] = 1
        return counting
    seen = KeyIndex()
    with mapped(path) as buf:
        bounds = block_bounds(buf, scan.end_offset)
        sizes = [buf[start : end + 1].count(b"\n") for start, end in bounds]
        first = scan.lines
        for (start, end), n_lines in zip(reversed(bounds), reversed(sizes), strict=True):
            first -= n_lines
            keys, _, ordinals, _ = _parse_block(Block(buf, start, end, first, n_lines), warn=False)
            for key, ordinal in zip(reversed(keys), reversed(ordinals), strict=True):
                if seen.add_new(key, RecordStatus.OK):
                    counting[ordinal] = 1
            release(buf, start, end + 1)
    return counting


def _rescan_ok_final(scan: Scan, path: Path) -> None:
    status = KeyIndex()
    line_of: dict[str, int] = {}
    duplicates = 0
    with mapped(path) as buf:
        for block in blocks(buf, scan.end_offset):
            keys, stats, ordinals, _ = _parse_block(block, warn=False)
            for key, stat, ordinal in zip(map(decode_key, keys), stats, ordinals, strict=True):
                if status.get(key) is RecordStatus.OK:
                    duplicates += stat == b"ok"
                    continue
                status[key], line_of[key] = _STATUS_OF[stat], ordinal
    if duplicates:
        logger.warning("%s has %d extra ok records; the first ok of a key counts", path, duplicates)
    scan.status = status
    if scan.line_of is not None:
        scan.line_of = line_of


_Parsed = tuple[list[bytes], list[bytes], Sequence[int], int]


def _parse_block(block: Block, *, warn: bool = True) -> _Parsed:
    """Keys (UTF-8), status bytes and ordinals of the records in `block`; how many lines
    are not records."""
    pairs = find_all(_RECORD_AFTER_NL, _RECORD_AT, block.buf, block.start, block.end)
    if len(pairs) != block.n_lines or _starts(block) != block.n_lines:
        return _parse_block_slowly(block, warn=warn)
    keys = [key for key, _ in pairs]
    stats = [stat for _, stat in pairs]
    return keys, stats, range(block.first_line, block.first_line + block.n_lines), 0


def _starts(block: Block) -> int:
    """How many record starts the block holds: more than its lines when a torn record
    runs into the next one (or when outputs nest such an object: parsed slowly, too)."""
    return block.buf[block.start : block.end].count(_START)


def _parse_block_slowly(block: Block, *, warn: bool) -> _Parsed:
    keys: list[bytes] = []
    stats: list[bytes] = []
    ordinals: list[int] = []
    corrupt = 0
    offset = block.start
    for ordinal, line in enumerate(block.lines(), start=block.first_line):
        parsed = _parse_line(line)
        if parsed is None:
            corrupt += 1
            if warn and corrupt <= _MAX_CORRUPT_WARNINGS:
                logger.warning(
                    "results line %d (byte %d) is not a whole record (torn or corrupt), "
                    "ignored: its row runs again on resume: %.80r",
                    ordinal + 1,
                    offset,
                    line,
                )
        else:
            keys.append(parsed[0].encode("utf-8", "surrogatepass"))
            stats.append(parsed[1])
            ordinals.append(ordinal)
        offset += len(line) + 1
    if warn and corrupt > _MAX_CORRUPT_WARNINGS:
        logger.warning(
            "... and %d more results lines from line %d on are not whole records, ignored",
            corrupt - _MAX_CORRUPT_WARNINGS,
            block.first_line + 1,
        )
    return keys, stats, ordinals, corrupt


def _parse_line(line: bytes) -> tuple[str, bytes] | None:
    """(key, status) of a line that is a whole record, else None."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("key"), str):
        return None
    stat = str(data.get("status", "")).encode()
    return (data["key"], stat) if stat in _STATUS_OF else None
