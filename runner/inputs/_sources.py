"""Input rows from inline rows, CSV, JSONL, Parquet or a glob of files, as a stream.

Each reader is a generator holding one chunk at most: CSV and JSONL are read line by
line through the `csv` / `json` modules (which also gives the exact line of each row,
even when a quoted cell spans lines), Parquet one record batch at a time. Empty CSV
cells, nulls and NaN become None, which expansion turns into the endpoint's default.
"""

from __future__ import annotations

import csv
import glob
import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ManifestError
from ..manifest import Manifest, SourceKind

__all__ = ["SourceRow", "display_path", "iter_rows"]

PARQUET_BATCH_ROWS = 8192


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


def iter_rows(manifest: Manifest) -> Iterator[SourceRow]:
    """The manifest's input rows, lazily, cut at `inputs.limit`."""
    inputs = manifest.inputs
    readers = {
        SourceKind.ROWS: _inline_rows,
        SourceKind.CSV: _csv_rows,
        SourceKind.JSONL: _jsonl_rows,
        SourceKind.PARQUET: _parquet_rows,
        SourceKind.FILES: _glob_rows,
        SourceKind.NONE: _no_rows,
    }
    rows = readers[inputs.source](manifest)
    return itertools.islice(rows, inputs.limit) if inputs.limit is not None else rows


def _inline_rows(manifest: Manifest) -> Iterator[SourceRow]:
    lines = manifest.inputs.row_lines
    for index, row in enumerate(manifest.inputs.rows):
        line = lines[index] if index < len(lines) else None
        yield SourceRow(index, manifest.display_path, line, dict(row))


def _no_rows(manifest: Manifest) -> Iterator[SourceRow]:
    yield SourceRow(0, manifest.display_path, None, {})


def _csv_rows(manifest: Manifest) -> Iterator[SourceRow]:
    inputs = manifest.inputs
    assert inputs.path is not None
    label = display_path(inputs.path)
    # utf-8-sig drops the byte-order mark spreadsheets write; it reads plain utf-8 as well.
    encoding = (
        "utf-8-sig" if inputs.encoding.lower().replace("_", "-") == "utf-8" else inputs.encoding
    )
    with open(inputs.path, newline="", encoding=encoding) as handle:
        reader = csv.reader(handle, delimiter=inputs.delimiter)
        try:
            header = _csv_header(reader, label)
            if header is None:
                return
            width = len(header)
            index, previous = 0, reader.line_num
            for cells in reader:
                start, previous = previous + 1, reader.line_num
                if not cells:
                    continue  # a blank line
                if len(cells) != width:
                    yield SourceRow(
                        index,
                        label,
                        start,
                        {},
                        f"has {len(cells)} cells but the header has {width} columns",
                    )
                else:
                    yield SourceRow(
                        index,
                        label,
                        start,
                        {h: v or None for h, v in zip(header, cells, strict=True)},
                    )
                index += 1
        except UnicodeDecodeError as exc:
            raise ManifestError(
                f"is not valid {inputs.encoding} text ({exc.reason}); set inputs.encoding "
                "(latin-1, cp1252, ...)",
                file=label,
                line=reader.line_num + 1,
            ) from None
        except csv.Error as exc:
            raise ManifestError(
                f"cannot be read as CSV: {exc}", file=label, line=reader.line_num
            ) from None


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


def _jsonl_rows(manifest: Manifest) -> Iterator[SourceRow]:
    path = manifest.inputs.path
    assert path is not None
    label = display_path(path)
    index = 0
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            if not line.strip():
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


def _parquet_rows(manifest: Manifest) -> Iterator[SourceRow]:
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
            for record in batch.to_pylist():
                values = {
                    k: None if isinstance(v, float) and v != v else v for k, v in record.items()
                }
                yield SourceRow(index, label, None, values)
                index += 1


def _glob_rows(manifest: Manifest) -> Iterator[SourceRow]:
    pattern = manifest.inputs.pattern
    assert pattern is not None
    full = os.path.join(manifest.base_dir, os.path.expanduser(pattern))
    # Sorted so that row indices do not depend on the file system's listing order.
    paths = sorted(p for p in glob.iglob(full, recursive=True) if os.path.isfile(p))
    for index, path in enumerate(paths):
        yield SourceRow(index, display_path(Path(path)), None, {"path": path})
