"""`cache/index.bin`: the results index as it was when the store was last closed, so that
reopening a large run folder does not scan all of `results.jsonl`.

A scan of a million lines takes ~1.5 s (a regular expression over ~300 MB); reading the
snapshot back takes milliseconds, plus a CRC-32 of the part of `results.jsonl` it covers
(~0.2 s per 300 MB, at memory speed). The snapshot is used only if every byte it covers
is unchanged: `results.jsonl` is append-only, so what a later run appended (one killed
before it could close the store) is scanned and applied on top, and a file edited or
cut anywhere in that part is scanned whole. Like the key cache it is only a cache:
missing, stale or damaged means a full scan, and deleting it is always safe.

The file: a magic line, a JSON header line, then the index's arrays (`KeyIndex.arrays`)
as raw little-endian bytes, the header holding their CRC-32.
"""

from __future__ import annotations

import json
import logging
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._index import CODES, KeyIndex
from ._runfolder import RunFolder, write_bytes_atomic

__all__ = ["Snapshot", "crc_of", "read_snapshot", "write_snapshot"]

logger = logging.getLogger("runner.results")

_MAGIC = b"spacerun results index v1\n"
_READ = 16 << 20
_TYPES = (np.dtype("<u8"), np.dtype("<u2"), np.dtype("i1"))


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An index of the first `covered` bytes of `results.jsonl`, which had CRC-32 `crc`."""

    index: KeyIndex
    covered: int
    crc: int
    lines: int
    corrupt: int


def crc_of(path: Path, stop: int) -> int | None:
    """The CRC-32 of the first `stop` bytes of the file; None if the file is shorter."""
    crc = 0
    buffer = bytearray(min(_READ, max(stop, 0)))
    with open(path, "rb", buffering=0) as handle, memoryview(buffer) as view:
        left = stop
        while left > 0:
            got = handle.readinto(view[: min(left, len(buffer))])
            if not got:
                return None
            crc = zlib.crc32(view[:got], crc)
            left -= got
    return crc


def write_snapshot(run_dir: Path, snapshot: Snapshot) -> None:
    """Write `snapshot` atomically (a reader sees the old one or the new one, whole)."""
    high, low, codes, other = snapshot.index.arrays()
    body = b"".join(
        [high.astype(_TYPES[0]).tobytes(), low.astype(_TYPES[1]).tobytes(), codes.tobytes()]
    )
    header = {
        "covered": snapshot.covered,
        "crc": snapshot.crc,
        "lines": snapshot.lines,
        "corrupt": snapshot.corrupt,
        "keys": len(high),
        "body_crc": zlib.crc32(body),
        "other": [[key, CODES.index(status)] for key, status in other.items()],
    }
    data = b"".join([_MAGIC, json.dumps(header, ensure_ascii=False).encode(), b"\n", body])
    write_bytes_atomic(RunFolder.at(run_dir).index_path, data)


def read_snapshot(run_dir: Path, results: Path) -> Snapshot | None:
    """The snapshot of the run folder if it still describes the start of `results`, else
    None (there is none, it is damaged, or that part of the file changed)."""
    path = RunFolder.at(run_dir).index_path
    try:
        data = path.read_bytes()
    except OSError:
        return None
    try:
        snapshot = _parse(data)
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        logger.info("ignoring the index snapshot %s (%s): scanning the results", path, exc)
        return None
    if snapshot is None or crc_of(results, snapshot.covered) != snapshot.crc:
        return None
    return snapshot


def _parse(data: bytes) -> Snapshot | None:
    if not data.startswith(_MAGIC):
        return None
    end = data.index(b"\n", len(_MAGIC))
    header = json.loads(data[len(_MAGIC) : end])
    body = memoryview(data)[end + 1 :]
    if zlib.crc32(body) != header["body_crc"]:
        raise ValueError("its arrays are damaged")
    n = int(header["keys"])
    if len(body) != n * sum(kind.itemsize for kind in _TYPES):
        raise ValueError("its arrays have the wrong size")
    high, low, codes = _arrays(body, n)
    other = {str(key): CODES[int(code)] for key, code in header["other"]}
    return Snapshot(
        index=KeyIndex.of_sorted_arrays(high, low, codes, other),
        covered=int(header["covered"]),
        crc=int(header["crc"]),
        lines=int(header["lines"]),
        corrupt=int(header["corrupt"]),
    )


def _arrays(body: memoryview, n: int) -> Iterator[np.ndarray]:
    offset = 0
    for kind in _TYPES:
        yield np.frombuffer(body, dtype=kind, count=n, offset=offset).astype(kind.newbyteorder("="))
        offset += n * kind.itemsize
