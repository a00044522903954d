"""Input rows from inline rows, CSV, JSONL, Parquet, a glob of files or a Hugging Face
dataset (`runner.inputs._dataset`), as a stream.

Each reader is a generator holding one chunk at most: CSV and JSONL are read line by
line through the `csv` / `json` modules (which also gives the exact line of each row,
even when a quoted cell spans lines), Parquet one record batch at a time. Empty CSV
cells, nulls and NaN become None, which expansion turns into the endpoint's default.
"""

from __future__ import annotations

import codecs
import csv
import glob
import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import ManifestError
from ..manifest import Manifest, SourceKind

__all__ = ["SourceRow", "display_path", "iter_rows"]

PARQUET_BATCH_ROWS = 8192
#: The longest line a CSV source may have (many cells of the longest allowed size).
MAX_LINE_BYTES = 16 << 20
_READ = 1 << 20
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One input row before mapping: its 0-based index, where it was read, its values."""

    index: int
    file: str
    line: int | None
    values: dict[str, Any]
    #: Why the row could not be read (bad JSON, wrong number of cells), else None.
    error: str | None = None

    @property
    def where(self) -> str:
        if self.line is None:
            return f"{self.file} (row {self.index})"
        return f"{self.file}:{self.line} (row {self.index})"


def display_path(path: Path) -> str:
    """A path as short as it can be: relative to the working folder when inside it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def iter_rows(manifest: Manifest, *, skip: int = 0) -> Iterator[SourceRow]:
    """The manifest's input rows, lazily, cut at `inputs.limit`; from row `skip` on.

    Skipped rows are passed over without being built (a resume skips a million CSV rows
    in about a fifth of the time it takes to read them), but they are still read: the
    rows after them keep their indices and lines."""
    inputs = manifest.inputs
    readers = {
        SourceKind.ROWS: _inline_rows,
        SourceKind.CSV: _csv_rows,
        SourceKind.JSONL: _jsonl_rows,
        SourceKind.PARQUET: _parquet_rows,
        SourceKind.FILES: _glob_rows,
        SourceKind.DATASET: _dataset_rows,
        SourceKind.NONE: _no_rows,
    }
    if inputs.limit is not None:
        skip = min(skip, inputs.limit)
    rows = readers[inputs.source](manifest, skip)
    return itertools.islice(rows, inputs.limit - skip) if inputs.limit is not None else rows


def _inline_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    lines = manifest.inputs.row_lines
    for index, row in enumerate(manifest.inputs.rows[skip:], skip):
        line = lines[index] if index < len(lines) else None
        yield SourceRow(index, manifest.display_path, line, dict(row))


def _dataset_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    from ._dataset import dataset_rows  # `datasets` is an extra, imported when used

    return dataset_rows(manifest, skip)


def _no_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    if not skip:
        yield SourceRow(0, manifest.display_path, None, {})


def _csv_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    inputs = manifest.inputs
    assert inputs.path is not None
    label = display_path(inputs.path)
    with open(inputs.path, "rb") as handle:
        lines = _CsvLines(handle, inputs.encoding, label)
        reader = csv.reader(lines, delimiter=inputs.delimiter)
        try:
            header = _csv_header(reader, label)
            if header is None:
                return
            yield from _csv_records(reader, header, label, skip)
        except csv.Error as exc:
            raise ManifestError(
                _csv_problem(exc), file=label, line=reader.line_num or lines.line
            ) from None


def _csv_records(reader: Any, header: list[str], label: str, skip: int) -> Iterator[SourceRow]:
    width = len(header)
    index = 0
    if skip:
        for cells in reader:
            index += bool(cells)  # a blank line is no row
            if index == skip:
                break
    previous = reader.line_num
    for cells in reader:
        start, previous = previous + 1, reader.line_num
        if not cells:
            continue  # a blank line
        if len(cells) != width:
            problem = f"has {len(cells)} cells but the header has {width} columns"
            yield SourceRow(index, label, start, {}, problem)
        else:
            values = {h: v or None for h, v in zip(header, cells, strict=True)}
            yield SourceRow(index, label, start, values)
        index += 1


def _csv_problem(exc: csv.Error) -> str:
    if "field larger than field limit" in str(exc):
        return (
            f"a cell is longer than {csv.field_size_limit():,} characters, the most a CSV "
            "cell may hold; put long texts in files (a file column) or a JSONL source"
        )
    return f"cannot be read as CSV: {exc}"


class _CsvLines:
    """The lines of a CSV file, decoded block by block, for `csv.reader`.

    A text-mode file decodes 8 KiB ahead of the reader, so its errors name a line before
    the one at fault; here each block's bad byte is placed by counting the newlines before
    it. Blocks are at most `_READ` bytes: a line over `MAX_LINE_BYTES` is refused before it
    is ever whole in memory. Lines end at `\\n`, `\\r\\n` or `\\r`, as `newline=""` has it."""

    def __init__(self, handle: BinaryIO, encoding: str, label: str) -> None:
        # utf-8-sig drops the byte-order mark spreadsheets write; it reads plain utf-8 too.
        name = "utf-8-sig" if encoding.lower().replace("_", "-") == "utf-8" else encoding
        self._decoder = codecs.getincrementaldecoder(name)()
        self._handle, self._encoding, self._label = handle, encoding, label
        #: Lines handed out so far (the 1-based line being read is `lines + 1`).
        self.lines = 0

    @property
    def line(self) -> int:
        return self.lines + 1

    def __iter__(self) -> Iterator[str]:
        carry, rest = "", b""
        while True:
            block = self._handle.read(_READ)
            final = not block
            # Cut after the block's last b"\n", so that (in ASCII-compatible encodings) a
            # block holds whole lines and a bad byte's line is counted within it.
            cut = block.rfind(b"\n") + 1
            if final:
                raw, rest = rest, b""
            elif cut:
                raw, rest = rest + block[:cut], block[cut:]
            else:
                raw, rest = b"", rest + block
            text = carry + self._decode(raw, final)
            hold = text.endswith("\r") and not final  # maybe the first half of \r\n
            body = text[:-1] if hold else text
            end = len(body) if final else max(body.rfind("\n"), body.rfind("\r")) + 1
            lines = _LINE.findall(body, 0, end)
            carry = text[end:]
            if len(carry) + len(rest) > MAX_LINE_BYTES:
                self.lines += len(lines)
                raise self._error(
                    f"has a line longer than {MAX_LINE_BYTES >> 20} MiB (a cell holds at most "
                    f"{csv.field_size_limit():,} characters); put long texts in files or a "
                    "JSONL source",
                    0,
                )
            for line in lines:
                self.lines += 1
                yield line
            if final:
                return

    def _decode(self, raw: bytes, final: bool) -> str:
        try:
            text: str = self._decoder.decode(raw, final)
        except UnicodeDecodeError as exc:
            raise self._error(
                f"is not valid {self._encoding} text ({exc.reason}); set inputs.encoding "
                "(latin-1, cp1252, ...)",
                raw.count(b"\n", 0, max(exc.start, 0)),
            ) from None
        nul = text.find("\x00")
        if nul >= 0:
            raise self._error(
                "holds a NUL byte: is this a binary file, or UTF-16 text? Set "
                "inputs.encoding (utf-16) or give a CSV text file",
                text.count("\n", 0, nul),
            )
        return text

    def _error(self, problem: str, lines_ahead: int) -> ManifestError:
        return ManifestError(problem, file=self._label, line=self.lines + lines_ahead + 1)


def _csv_header(reader: Any, label: str) -> list[str] | None:
    for header in reader:
        if not header:
            continue
        names = [h.strip() for h in header]
        seen: set[str] = set()
        for position, name in enumerate(names, 1):
            if not name:
                raise ManifestError(
                    f"column {position} of the header has no name; expected a header row of "
                    "column names",
                    file=label,
                    line=reader.line_num,
                )
            if name in seen:
                raise ManifestError(
                    f"the column {name!r} appears twice in the header; rename one",
                    file=label,
                    line=reader.line_num,
                )
            seen.add(name)
        return names
    return None


def _jsonl_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    path = manifest.inputs.path
    assert path is not None
    label = display_path(path)
    index = 0
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            if index < skip:
                index += 1
                continue
            try:
                value = json.loads(line)
            except ValueError as exc:
                yield SourceRow(index, label, line_number, {}, f"is not valid JSON ({exc})")
            else:
                if isinstance(value, dict):
                    yield SourceRow(index, label, line_number, value)
                else:
                    yield SourceRow(
                        index,
                        label,
                        line_number,
                        {},
                        "expected a JSON object "
                        f'like {{"text": "Hello"}}, got {type(value).__name__}',
                    )
            index += 1


def _parquet_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    # pyarrow costs ~0.3 s to import: only Parquet inputs need it.
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = manifest.inputs.path
    assert path is not None
    label = display_path(path)
    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise ManifestError(f"cannot be read as Parquet: {exc}", file=label) from None
    index = 0
    with parquet:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
            if index + batch.num_rows <= skip:
                index += batch.num_rows
                continue
            first = max(skip - index, 0)
            index += first
            for record in batch.slice(first).to_pylist():
                values = {
                    k: None if isinstance(v, float) and v != v else v for k, v in record.items()
                }
                yield SourceRow(index, label, None, values)
                index += 1


def _glob_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    pattern = manifest.inputs.pattern
    assert pattern is not None
    full = os.path.join(manifest.base_dir, os.path.expanduser(pattern))
    # Sorted so that row indices do not depend on the file system's listing order.
    paths = sorted(p for p in glob.iglob(full, recursive=True) if os.path.isfile(p))
    for index, path in enumerate(paths[skip:], skip):
        yield SourceRow(index, display_path(Path(path)), None, {"path": path})
