"""Results -> Parquet shards in the layout `datasets` reads back with typed columns.

One row per key: `spacerun_key`, the input parameters, one column per output, `status`
and `error`. A column whose values are all audio, image or video files becomes an `Audio`,
`Image` or `Video` column holding the files' bytes (a struct of `bytes` and `path`, as
`datasets` stores them), so the Hub's viewer plays and shows them.

Written with pyarrow rather than `datasets.Dataset.to_parquet`: `datasets` 5 encodes an
Audio or Video cell through torch/torchcodec even when it is given the bytes already, and
spacerun should not need torch to copy files into a table. The schema carries the same
`huggingface` metadata `datasets` writes (`Features.arrow_schema`), which is what makes
`load_dataset` give the columns their feature types.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["COLUMN_KINDS", "ShardWriter", "file_kind", "media_cell", "pushed_columns"]

AUDIO = frozenset({".wav", ".mp3", ".flac", ".ogg", ".opus", ".m4a", ".aac"})
IMAGE = frozenset({".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff"})
VIDEO = frozenset({".mp4", ".webm", ".mov", ".avi", ".mkv"})
COLUMN_KINDS = {"Audio": AUDIO, "Image": IMAGE, "Video": VIDEO}
#: A shard is cut once it holds this many rows or bytes of media, whichever comes first.
SHARD_ROWS = 50_000
SHARD_BYTES = 256 << 20


def pushed_columns(columns: Sequence[str], picked: Sequence[str] | None) -> list[tuple[str, str]]:
    """(table column, pushed name) for the inputs and outputs of `load_table`'s columns;
    an input named like an output is pushed as `input_<name>`."""
    outputs = [c.removeprefix("outputs.") for c in columns if c.startswith("outputs.")]
    out: list[tuple[str, str]] = []
    for column in columns:
        if column.startswith("inputs."):
            name = column.removeprefix("inputs.")
            if picked is None or name in picked:
                out.append((column, f"input_{name}" if name in outputs else name))
    out += [(f"outputs.{name}", name) for name in outputs]
    return out


def _file_of(value: Any, root: Path) -> Path | None:
    if not isinstance(value, str) or not value or "\n" in value:
        return None
    path = Path(value) if os.path.isabs(value) else root / value
    return path if path.suffix.lower() in AUDIO | IMAGE | VIDEO and path.is_file() else None


def file_kind(values: Sequence[Any], root: Path) -> str | None:
    """The media kind of a column whose every value is a file of that kind, else None."""
    kinds = set()
    for value in values:
        if _missing(value):
            continue
        file = _file_of(value, root)
        if file is None:
            return None
        kinds.add(next(k for k, exts in COLUMN_KINDS.items() if file.suffix.lower() in exts))
    return kinds.pop() if len(kinds) == 1 else None


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class ShardWriter:
    """Turns rows of the results table into Parquet files with typed columns."""

    def __init__(self, root: Path, columns: list[tuple[str, str]], kinds: Mapping[str, str]):
        import datasets

        self.root, self.columns, self.kinds = root, columns, dict(kinds)
        self._datasets = datasets

    @classmethod
    def for_table(cls, root: Path, table: Any, picked: Sequence[str] | None) -> ShardWriter:
        columns = pushed_columns([str(c) for c in table.columns], picked)
        kinds = {}
        for column, name in columns:
            kind = file_kind(table[column].tolist(), root)
            if kind is not None:
                kinds[name] = kind
        return cls(root, columns, kinds)

    def chunks(self, rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
        """`rows` cut into shards of at most SHARD_ROWS rows or SHARD_BYTES of media."""
        chunk: list[dict[str, Any]] = []
        size = 0
        for row in rows:
            for column, name in self.columns:
                if name in self.kinds and (file := _file_of(row.get(column), self.root)):
                    size += file.stat().st_size
            chunk.append(row)
            if len(chunk) >= SHARD_ROWS or size >= SHARD_BYTES:
                yield chunk
                chunk, size = [], 0
        if chunk:
            yield chunk

    def write(self, rows: list[dict[str, Any]], target: Path) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        data: dict[str, list[Any]] = {"spacerun_key": [r["key"] for r in rows]}
        for column, name in self.columns:
            values = [r.get(column) for r in rows]
            data[name] = (
                [self._media(v) for v in values]
                if name in self.kinds
                else [None if _missing(v) else v for v in values]
            )
        data["status"] = [r["status"] for r in rows]
        data["error"] = [_error(r) for r in rows]
        plain = pa.Table.from_pydict({k: v for k, v in data.items() if k not in self.kinds})
        # A column with no value yet in this shard is text, as later shards' values of an
        # output or an error are: every shard must have the same schema.
        schema = pa.schema(
            [f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in plain.schema]
        )
        features = self._datasets.Features.from_arrow_schema(schema)
        for name, kind in self.kinds.items():
            features[name] = getattr(self._datasets, kind)()
        ordered = self._datasets.Features({name: features[name] for name in data})
        table = pa.Table.from_pydict(data, schema=ordered.arrow_schema)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)

    def _media(self, value: Any) -> dict[str, Any] | None:
        return media_cell(value, self.root)


def media_cell(value: Any, root: Path) -> dict[str, Any] | None:
    """A file (absolute, or relative to the run folder `root`) as `datasets` stores a media
    cell: its bytes and its name."""
    file = _file_of(value, root)
    if file is None:
        return None
    return {"bytes": file.read_bytes(), "path": file.name}


def _error(row: Mapping[str, Any]) -> str | None:
    kind, message = row.get("error_type"), row.get("error_message")
    if _missing(kind) and _missing(message):
        return None
    return ": ".join(str(p) for p in (kind, message) if not _missing(p))
