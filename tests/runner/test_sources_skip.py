"""Resume passes over the rows before the first that needs work without building them
(`iter_rows(manifest, skip=N)`): the rows after them are exactly those a full read gives,
indices and lines included, for every kind of source."""

from __future__ import annotations

import itertools
import json
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import runner.inputs._sources as sources
from runner.inputs import iter_rows
from runner.manifest import Manifest, load_manifest

CSV = 'text,n\nfirst,1\n\n"two\nlines",2\nbad,3,extra\nfourth,4\n\n\nfifth,\nsixth,6\n'


def manifest(folder: Path, inputs: str) -> Manifest:
    path = folder / "m.yaml"
    path.write_text(
        "app: {url: 'http://127.0.0.1:1', endpoint: /predict}\n" + textwrap.dedent(inputs)
    )
    return load_manifest(path)


def sources_in(folder: Path) -> dict[str, Manifest]:
    (folder / "rows.csv").write_text(CSV)
    jsonl = ['{"text": "a"}', "", '{"text": "b"}', "not json", "[1]", '{"text": "c"}', ""]
    (folder / "rows.jsonl").write_text("\n".join(jsonl) + "\n")
    pq.write_table(pa.table({"text": [f"p{i}" for i in range(25)]}), folder / "rows.parquet")
    (folder / "files").mkdir()
    for name in "dcba":
        (folder / "files" / f"{name}.txt").write_text(name)
    return {
        "csv": manifest(folder, "inputs: {csv: rows.csv}"),
        "csv limited": manifest(folder, "inputs: {csv: rows.csv, limit: 4}"),
        "jsonl": manifest(folder, "inputs: {jsonl: rows.jsonl}"),
        "parquet": manifest(folder, "inputs: {parquet: rows.parquet}"),
        "inline": manifest(folder, "inputs: {rows: [{text: x}, {text: y}, {text: z}]}"),
        "files": manifest(folder, "inputs: {files: 'files/*.txt'}"),
        "none": manifest(folder, "inputs: {}"),
    }


@pytest.mark.parametrize(
    "kind", ["csv", "csv limited", "jsonl", "parquet", "inline", "files", "none"]
)
def test_skipping_rows_gives_the_rest_of_a_full_read(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sources, "PARQUET_BATCH_ROWS", 4)  # skips whole batches and parts
    m = sources_in(tmp_path)[kind]
    full = list(iter_rows(m))
    assert full, kind
    for skip in range(len(full) + 2):
        assert list(iter_rows(m, skip=skip)) == full[skip:], (kind, skip)


def test_skipped_csv_rows_keep_the_lines_of_later_problems(tmp_path: Path) -> None:
    """A row after the skipped ones still names its own line (a quoted cell spanning two
    lines and blank lines come before it)."""
    m = sources_in(tmp_path)["csv"]
    bad = next(row for row in iter_rows(m, skip=2) if row.error is not None)
    assert (bad.index, bad.line) == (2, 6) and "3 cells" in (bad.error or "")
    rows = list(itertools.islice(iter_rows(m, skip=3), 2))
    assert [(r.index, r.line, r.values) for r in rows] == [
        (3, 7, {"text": "fourth", "n": "4"}),
        (4, 10, {"text": "fifth", "n": None}),
    ]
    assert json.dumps([r.values for r in rows])  # plain values, as a full read gives
