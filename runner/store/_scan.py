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
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from ._index import CODES, KEY_LENGTH, KeyIndex, decode_key, split_hex_keys
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

_BLOCK_SIZE = 4 << 20
_STATUS_OF = {status.value.encode(): status for status in RecordStatus}
# Statuses begin with different letters: the first byte names the code.
_CODE_OF_LETTER = np.zeros(256, dtype=np.int8)
_CODE_OF_LETTER[[status.value.encode()[0] for status in CODES]] = np.arange(len(CODES))
_OK = CODES.index(RecordStatus.OK)
_HEX_KEY = re.compile(rb"[0-9a-f]{20}")
# A whole line as `ResultRecord.to_line` writes it: its key (without escapes), its status,
# and its last field, `finished_at` (or `submitted_at` after it), closing the object. A
# block whose every line matches (and holds no second record start) takes the fast path;
# any other block is parsed line by line with `json.loads`, so a torn or joined line
# never counts as a record.
_START = b'{"key":"'
_RECORD = (
    rb'\{"key":"([^"\\\n]*)","status":"(ok|error|cancelled|timeout)",'
    rb'[^\n]*,"(?:finished|submitted)_at":"[^"\n]*"\}(?=\n|\Z)'
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
    after_nl: re.Pattern[bytes],
    at: re.Pattern[bytes],
    buf: mmap.mmap | bytes | bytearray,
    start: int,
    end: int,
) -> list[Any]:
    """`findall` of a line pattern over the lines in `buf[start:end]`."""
    found: list[Any] = after_nl.findall(buf, max(start - 1, 0), end)
    if start == 0 and (first := at.match(buf, 0, end)):
        found.insert(0, first.groups() if at.groups > 1 else first[at.groups])
    return found


@dataclass(frozen=True, slots=True)
class Block:
    """Complete lines `buf[start:end]` (`buf[end]` is a newline), from line `first_line`."""

    buf: mmap.mmap | bytes | bytearray
    start: int
    end: int
    first_line: int
    n_lines: int
    #: The file offset of `buf[0]`.
    base: int = 0

    def lines(self) -> list[bytes]:
        return bytes(self.buf[self.start : self.end]).split(b"\n")


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
    lines: int  # complete lines
    corrupt: int  # complete lines that are not records
    torn: bytes  # bytes after the last newline
    end_offset: int  # file offset just past the last complete line
    #: The line ordinal of each key's record that counts, in no particular order.
    counting: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The CRC-32 of the complete lines scanned, if asked for.
    crc: int | None = None


def scan_results(
    path: Path, *, start: int = 0, first_line: int = 0, crc: int | None = None
) -> Scan:
    """Index a results file: key -> the status that counts, and the line that counts.

    The record that counts for a key is its first `ok`, else its latest record (a key is
    written ok at most once by `ResultsStore`; a file with more gets a warning). Keys are
    gathered per block as arrays, then one stable sort groups each key's records in
    file order. Read-only: a torn tail is reported in `torn`, not repaired.

    From byte `start` on only (a line's start, which is line `first_line`), if given;
    with `crc` given, `Scan.crc` continues it over the complete lines scanned.
    """
    found = _Found()
    lines = corrupt = 0
    with mapped(path) as buf:
        end_offset = max(buf.rfind(b"\n") + 1, start)
        torn = bytes(buf[end_offset:])
    for block in _read_blocks(path, start, end_offset, first_line):
        if crc is not None:
            with memoryview(block.buf) as view:
                crc = zlib.crc32(view[: block.end + 1], crc)
        corrupt += _parse_block(block, found)
        lines += block.n_lines
    status, counting = found.index(path)
    return Scan(status, lines, corrupt, torn, end_offset, counting, crc)


def _read_blocks(path: Path, start: int, stop: int, first_line: int) -> Iterator[Block]:
    """The blocks of whole lines of bytes `start` to `stop` of the file (`stop` follows a
    newline), read into one reused buffer. Not memory-mapped: the kernel kept mapped
    pages of a 500 MB file resident (~200 MB) despite `release`, and they count in RSS."""
    if start >= stop:
        return  # nothing to read (or no file at all)
    buffer = bytearray(_BLOCK_SIZE)
    offset, filled = start, 0  # file offset of buffer[0]; bytes held in the buffer
    with open(path, "rb", buffering=0) as handle:
        handle.seek(start)
        while offset + filled < stop:
            with memoryview(buffer) as view:
                got = handle.readinto(view[filled : min(len(buffer), stop - offset)])
            if not got:
                return  # cut meanwhile: what was read is all there is
            filled += got
            end = buffer.rfind(b"\n", 0, filled)
            if end < 0:  # a line longer than the buffer
                buffer.extend(bytes(len(buffer)))
                continue
            n_lines = buffer.count(b"\n", 0, end + 1)
            yield Block(buffer, 0, end, first_line, n_lines, base=offset)
            first_line += n_lines
            rest = filled - end - 1
            buffer[:rest] = buffer[end + 1 : filled]
            offset, filled = offset + end + 1, rest


def counting_lines(path: Path, scan: Scan) -> bytearray:
    """One byte per complete line of the results file `scan` was made of: 1 where the line
    is the record that counts for its key, else 0."""
    counting = bytearray(scan.lines)
    np.frombuffer(counting, dtype=np.uint8)[scan.counting] = 1
    return counting


class _Found:
    """The records of a scan so far, in file order: hex keys as arrays per block, any
    other key in lists."""

    __slots__ = ("codes", "high", "low", "ordinals", "other")
    DTYPES: ClassVar[dict[str, type[np.generic]]] = {
        "high": np.uint64, "low": np.uint16, "codes": np.int8, "ordinals": np.int64
    }  # fmt: skip

    def __init__(self) -> None:
        self.high: list[NDArray[np.uint64]] = []
        self.low: list[NDArray[np.uint16]] = []
        self.codes: list[NDArray[np.int8]] = []
        self.ordinals: list[NDArray[np.int64]] = []
        self.other: list[tuple[str, int, int]] = []  # (key, code, ordinal)

    def add(self, keys: list[bytes], codes: NDArray[np.int8], ordinals: NDArray[np.int64]) -> None:
        if not keys:
            return
        joined = b"".join(keys)
        valid = None
        if len(joined) == KEY_LENGTH * len(keys):
            chars = np.frombuffer(joined, dtype=np.uint8).reshape(-1, KEY_LENGTH)
            high, low, valid = split_hex_keys(chars)
        if valid is None or not valid.all():
            self._add_some(keys, codes, ordinals)
            return
        self.high.append(high)
        self.low.append(low)
        self.codes.append(codes)
        self.ordinals.append(ordinals)

    def _add_some(
        self, keys: list[bytes], codes: NDArray[np.int8], ordinals: NDArray[np.int64]
    ) -> None:
        hex_keys: list[bytes] = []
        hex_at: list[int] = []
        for at, key in enumerate(keys):
            if _HEX_KEY.fullmatch(key):
                hex_keys.append(key)
                hex_at.append(at)
            else:
                self.other.append((decode_key(key), int(codes[at]), int(ordinals[at])))
        if hex_keys:
            picked = np.array(hex_at, dtype=np.intp)
            self.add(hex_keys, codes[picked], ordinals[picked])

    def _joined(self, name: str) -> Any:
        parts = getattr(self, name)
        setattr(self, name, [])
        return np.concatenate(parts) if parts else np.zeros(0, dtype=_Found.DTYPES[name])

    def index(self, path: Path) -> tuple[KeyIndex, NDArray[np.int64]]:
        """The index of the records found, and the ordinals of those that count."""
        # One array at a time, each block's parts dropped as soon as they are joined: at a
        # million lines this keeps the peak near the arrays' own 19 MB, not three times it.
        high, low, codes, ordinals = map(self._joined, ("high", "low", "codes", "ordinals"))
        order = np.lexsort((low, high))  # stable: a key's records stay in file order
        high = high[order]
        low = low[order]
        codes = codes[order]
        ordinals = ordinals[order]
        del order
        first = np.ones(len(high), dtype=np.bool_)
        first[1:] = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
        last = np.ones(len(high), dtype=np.bool_)
        last[:-1] = first[1:]
        counts = last
        if np.any((codes == _OK) & ~last):  # an ok record is not its key's last
            counts = _first_ok_counts(path, first, last, np.flatnonzero(codes == _OK))
        del first
        other, other_lines = _other_keys(path, self.other)
        counting = np.concatenate([ordinals[counts], np.array(other_lines, dtype=np.int64)])
        del ordinals
        index = KeyIndex.of_sorted_arrays(high[counts], low[counts], codes[counts], other)
        return index, counting


def _first_ok_counts(
    path: Path, first: NDArray[np.bool_], last: NDArray[np.bool_], ok: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """Which records count when some key has a record after its ok (a file not written by
    `ResultsStore` alone): its first ok, else its latest record."""
    group = np.cumsum(first) - 1
    first_ok = ok[np.concatenate([[True], group[ok][1:] != group[ok][:-1]])]
    counts: NDArray[np.bool_] = last.copy()
    counts[np.flatnonzero(last)[group[first_ok]]] = False
    counts[first_ok] = True
    if extra := len(ok) - len(first_ok):
        logger.warning("%s has %d extra ok records; the first ok of a key counts", path, extra)
    return counts


def _other_keys(
    path: Path, found: list[tuple[str, int, int]]
) -> tuple[dict[str, RecordStatus], list[int]]:
    """The status and line that count for keys that are not 20 hex digits."""
    counted: dict[str, tuple[int, int]] = {}
    extra = 0
    for key, code, ordinal in found:
        previous = counted.get(key)
        if previous is not None and previous[0] == _OK:
            extra += code == _OK
            continue
        counted[key] = (code, ordinal)
    if extra:
        logger.warning("%s has %d extra ok records; the first ok of a key counts", path, extra)
    return {k: CODES[c] for k, (c, _) in counted.items()}, [o for _, o in counted.values()]


def _parse_block(block: Block, found: _Found, *, warn: bool = True) -> int:
    """Add the records in `block` to `found`; how many lines are not records."""
    pairs = find_all(_RECORD_AFTER_NL, _RECORD_AT, block.buf, block.start, block.end)
    if len(pairs) == block.n_lines and _starts(block) == block.n_lines:
        first_letters = bytes([status[0] for _, status in pairs])
        codes = _CODE_OF_LETTER[np.frombuffer(first_letters, dtype=np.uint8)]
        ordinals = np.arange(block.first_line, block.first_line + block.n_lines, dtype=np.int64)
        found.add([key for key, _ in pairs], codes, ordinals)
        return 0
    return _parse_block_slowly(block, found, warn=warn)


def _starts(block: Block) -> int:
    """How many record starts the block holds: more than its lines when a torn record
    runs into the next one (or when outputs nest such an object: parsed slowly, too)."""
    if isinstance(block.buf, mmap.mmap):
        return block.buf[block.start : block.end].count(_START)
    return block.buf.count(_START, block.start, block.end)


def _parse_block_slowly(block: Block, found: _Found, *, warn: bool) -> int:
    keys: list[bytes] = []
    codes = bytearray()
    ordinals: list[int] = []
    corrupt = 0
    offset = block.base + block.start
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
            codes.append(int(_CODE_OF_LETTER[parsed[1][0]]))
            ordinals.append(ordinal)
        offset += len(line) + 1
    if warn and corrupt > _MAX_CORRUPT_WARNINGS:
        logger.warning(
            "... and %d more results lines from line %d on are not whole records, ignored",
            corrupt - _MAX_CORRUPT_WARNINGS,
            block.first_line + 1,
        )
    found.add(keys, np.frombuffer(bytes(codes), dtype=np.int8), np.array(ordinals, np.int64))
    return corrupt


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
