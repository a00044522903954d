"""Expansion: each input source, map, matrix, limit, types and defaults, and the keys'
stability, against the schema of a real Gradio app (tests/data/manifests/forms_app.py)."""

from __future__ import annotations

import shutil
import textwrap
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support.forms import forms_app

from jobs import AppSchema
from runner.errors import ValidationFailed
from runner.inputs import FileHasher, Submission, batched, iter_submissions, validate_submissions
from runner.manifest import Manifest, load_manifest

DATA = Path(__file__).parent.parent / "data" / "manifests"
FORM_DEFAULTS = {"scale": 1, "flag": False, "mode": "fast", "tags": [], "audio": None,
                 "extra": None}  # fmt: skip


@pytest.fixture(scope="module")
def schema() -> Iterator[AppSchema]:
    with forms_app().serve() as app_schema:
        yield app_schema


def manifest(folder: Path, text: str) -> Manifest:
    path = folder / "m.yaml"
    path.write_text("app: {url: 'http://127.0.0.1:1', endpoint: /form}\n" + textwrap.dedent(text))
    return load_manifest(path)


def expand(m: Manifest, schema: AppSchema) -> list[Submission]:
    return list(iter_submissions(m, schema))


def test_inline_rows_get_types_and_defaults(tmp_path: Path, schema: AppSchema) -> None:
    """Every parameter is present, in the endpoint's order; missing ones get defaults."""
    m = manifest(
        tmp_path, "inputs:\n  rows: [{text: hi, count: 2}, {text: yo, count: '3', flag: 'yes'}]\n"
    )
    first, second = expand(m, schema)
    assert dict(first.inputs) == {"text": "hi", "count": 2, **FORM_DEFAULTS}
    assert list(first.inputs) == [p.name for p in schema.endpoint("/form").parameters]
    assert second.inputs["count"] == 3 and second.inputs["flag"] is True
    assert (first.row, first.line, second.row, second.line) == (0, 3, 1, 3)


def test_csv_cells_become_the_parameters_types(tmp_path: Path, schema: AppSchema) -> None:
    """Text cells turn into ints, floats, bools and lists; empty cells take the defaults."""
    (tmp_path / "rows.csv").write_text(
        "text,count,scale,flag,mode,tags,extra\n"
        'hello,7,2.5,true,slow,"a,c","{""k"": 1}"\n'
        "0123,8,,,,,\n"
    )
    first, second = expand(manifest(tmp_path, "inputs: {csv: rows.csv}\n"), schema)
    assert dict(first.inputs) == {
        "text": "hello", "count": 7, "scale": 2.5, "flag": True, "mode": "slow",
        "tags": ["a", "c"], "audio": None, "extra": '{"k": 1}',
    }  # fmt: skip
    assert dict(second.inputs) == {"text": "0123", "count": 8, **FORM_DEFAULTS}
    assert (first.line, second.line) == (2, 3)
    assert first.where == f"{tmp_path / 'rows.csv'}:2 (row 0)"


def test_csv_semicolons_and_latin1(tmp_path: Path, schema: AppSchema) -> None:
    (tmp_path / "rows.csv").write_bytes("text;count\ncaf\xe9;1\n".encode("latin-1"))
    m = manifest(tmp_path, "inputs: {csv: rows.csv, delimiter: ';', encoding: latin-1}\n")
    assert [s.inputs["text"] for s in expand(m, schema)] == ["café"]


def test_csv_line_numbers_count_multiline_cells(schema: AppSchema) -> None:
    """A quoted cell over two lines: the next row's line is still exact."""
    m = load_manifest(DATA / "sentences.csv", app="http://127.0.0.1:1", endpoint="/form",
                      overrides=["inputs.map={text: '{sentence}', count: '{count}'}"])  # fmt: skip
    subs = expand(m, schema)
    assert [(s.row, s.line) for s in subs] == [(0, 2), (1, 3), (2, 5)]
    assert subs[1].inputs["text"] == "a cell\non two lines"


def test_jsonl_rows(schema: AppSchema, tmp_path: Path) -> None:
    shutil.copy(DATA / "rows.jsonl", tmp_path / "rows.jsonl")
    subs = expand(manifest(tmp_path, "inputs: {jsonl: rows.jsonl}\n"), schema)
    assert [(s.inputs["text"], s.inputs["count"], s.line) for s in subs] == [
        ("one", 1, 1), ("two", 2, 3),
    ]  # fmt: skip
    assert subs[1].inputs["tags"] == ["a", "c"]


def test_parquet_rows_nulls_take_defaults(tmp_path: Path, schema: AppSchema) -> None:
    table = pa.table({"text": ["a", "b"], "count": [1, 2], "scale": [3.5, float("nan")]})
    pq.write_table(table, tmp_path / "rows.parquet")
    subs = expand(manifest(tmp_path, "inputs: {parquet: rows.parquet}\n"), schema)
    assert [(s.inputs["text"], s.inputs["scale"], s.line) for s in subs] == [
        ("a", 3.5, None), ("b", 1, None),
    ]  # fmt: skip
    assert subs[1].where == f"{tmp_path / 'rows.parquet'} (row 1)"


def test_files_glob_with_map(tmp_path: Path, schema: AppSchema) -> None:
    """One row per file (sorted), column `path`; map puts it in the audio parameter."""
    shutil.copytree(DATA / "clips", tmp_path / "clips")
    m = manifest(tmp_path, """\
        inputs:
          files: clips/*.wav
          map: {audio: "{path}", text: "clip {path}", count: 1}
        """)  # fmt: skip
    subs = expand(m, schema)
    paths = [str(tmp_path / "clips" / n) for n in ("a.wav", "b.wav")]
    assert [s.inputs["audio"] for s in subs] == paths
    assert [s.files for s in subs] == [(paths[0],), (paths[1],)]
    assert subs[0].inputs["text"] == f"clip {paths[0]}"


def test_map_whole_placeholder_keeps_type_and_no_source_gives_one_row(
    tmp_path: Path, schema: AppSchema
) -> None:
    m = manifest(tmp_path, "inputs:\n  map: {text: 'literal {{braces}}', count: 5}\n")
    (only,) = expand(m, schema)
    assert only.inputs["text"] == "literal {braces}" and only.inputs["count"] == 5


def test_matrix_is_a_product_over_every_row(tmp_path: Path, schema: AppSchema) -> None:
    m = manifest(tmp_path, """\
        inputs:
          rows: [{t: x}, {t: y}]
          map: {text: "{t}-{mode}", count: 1}
          matrix: {mode: [fast, slow], scale: [1, 2, 3]}
        """)  # fmt: skip
    subs = expand(m, schema)
    assert len(subs) == 2 * 2 * 3
    assert [(s.row, s.inputs["text"], s.inputs["scale"]) for s in subs[:3]] == [
        (0, "x-fast", 1), (0, "x-fast", 2), (0, "x-fast", 3),
    ]  # fmt: skip
    assert {s.inputs["mode"] for s in subs} == {"fast", "slow"}
    assert len({s.key for s in subs}) == 12


def test_limit_cuts_the_source_before_the_matrix(tmp_path: Path, schema: AppSchema) -> None:
    m = manifest(tmp_path, """\
        inputs:
          rows: [{text: a, count: 1}, {text: b, count: 1}, {text: c, count: 1}]
          matrix: {flag: [true, false]}
          limit: 2
        """)  # fmt: skip
    assert [(s.row, s.inputs["flag"]) for s in expand(m, schema)] == [
        (0, True), (0, False), (1, True), (1, False),
    ]  # fmt: skip


def test_keys_are_stable_across_row_order_and_sources(tmp_path: Path, schema: AppSchema) -> None:
    """Same inputs -> same key whatever the order, the source, or 2 vs 2.0 vs "2"."""
    (tmp_path / "a.csv").write_text("text,count,scale\nx,1,2\ny,2,3.5\n")
    (tmp_path / "b.csv").write_text("text,count,scale\ny,2,3.5\nx,1,2.0\n")
    a = {
        s.inputs["text"]: s.key
        for s in expand(manifest(tmp_path, "inputs: {csv: a.csv}\n"), schema)
    }
    b = {
        s.inputs["text"]: s.key
        for s in expand(manifest(tmp_path, "inputs: {csv: b.csv}\n"), schema)
    }
    inline = manifest(tmp_path, "inputs: {rows: [{text: x, count: 1, scale: 2}]}\n")
    assert a == b and a["x"] != a["y"]
    assert expand(inline, schema)[0].key == a["x"]
    assert len(a["x"]) == 20 and int(a["x"], 16) >= 0


def test_identical_rows_share_a_key(tmp_path: Path, schema: AppSchema) -> None:
    m = manifest(tmp_path, "inputs: {rows: [{text: x, count: 1}, {text: x, count: 1}]}\n")
    first, second = expand(m, schema)
    assert first.key == second.key and (first.row, second.row) == (0, 1)


def test_any_change_gives_a_new_key(tmp_path: Path, schema: AppSchema) -> None:
    """A value, a default-vs-explicit difference, or the endpoint changes the key."""
    base = expand(manifest(tmp_path, "inputs: {rows: [{text: x, count: 1}]}\n"), schema)[0].key
    changed = expand(manifest(tmp_path, "inputs: {rows: [{text: x, count: 2}]}\n"), schema)[0].key
    same = expand(manifest(tmp_path, "inputs: {rows: [{text: x, count: 1, mode: fast}]}\n"), schema)
    assert changed != base and same[0].key == base  # an explicit default is the default
    echo = tmp_path / "echo.yaml"
    echo.write_text("app: {url: 'http://h:1', endpoint: /echo}\ninputs: {rows: [{t: x}]}\n")
    assert expand(load_manifest(echo), schema)[0].key != base


def test_file_inputs_key_on_content_not_path(tmp_path: Path, schema: AppSchema) -> None:
    """A renamed copy keeps the key; new bytes give a new key."""
    (tmp_path / "one.wav").write_bytes(b"RIFF-1")
    (tmp_path / "copy.wav").write_bytes(b"RIFF-1")
    (tmp_path / "other.wav").write_bytes(b"RIFF-2")
    m = manifest(tmp_path, """\
        inputs:
          rows: [{audio: one.wav}, {audio: copy.wav}, {audio: other.wav}]
          map: {audio: "{audio}", text: t, count: 1}
        """)  # fmt: skip
    one, copy, other = expand(m, schema)
    assert one.key == copy.key != other.key
    assert one.inputs["audio"] == str(tmp_path / "one.wav")


def test_file_hashes_are_cached_by_size_and_mtime(tmp_path: Path) -> None:
    """Unchanged (path, size, mtime) is not read again; a new mtime is."""
    path = tmp_path / "f.bin"
    path.write_bytes(b"aaaa")
    hasher = FileHasher()
    first = hasher.digest(str(path))
    stat = path.stat()
    path.write_bytes(b"bbbb")  # same size; put the old mtime back: the cache answers
    import os

    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert hasher.digest(str(path)) == first
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert hasher.digest(str(path)) != first


def test_first_bad_row_stops_expansion_with_the_report(tmp_path: Path, schema: AppSchema) -> None:
    m = manifest(tmp_path, "inputs: {rows: [{text: a, count: 1}, {text: b, count: many}]}\n")
    iterator = iter_submissions(m, schema)
    assert next(iterator).inputs["text"] == "a"
    with pytest.raises(ValidationFailed) as info:
        next(iterator)
    assert "count (Number): expected a whole number" in str(info.value)
    assert f"{m.path}:2 (row 1): got 'many'" in str(info.value)


def test_batches(tmp_path: Path, schema: AppSchema) -> None:
    rows = ", ".join(f"{{text: t{i}, count: {i}}}" for i in range(5))
    m = manifest(tmp_path, f"inputs: {{rows: [{rows}]}}\n")
    assert [len(b) for b in batched(iter_submissions(m, schema), 2)] == [2, 2, 1]


def test_expansion_is_lazy_and_memory_is_flat(tmp_path: Path, schema: AppSchema) -> None:
    """20,000 CSV rows: the first submission comes before the file is read, and
    expanding and validating all of them stays within a few MB of Python memory."""
    with open(tmp_path / "big.csv", "w") as handle:
        handle.write("text,count,scale\n")
        for i in range(20_000):
            handle.write(f"sentence number {i},{i},{i % 10}\n")
    m = manifest(tmp_path, "inputs: {csv: big.csv}\n")
    tracemalloc.start()
    try:
        iterator = iter_submissions(m, schema)
        assert next(iterator).inputs["text"] == "sentence number 0"
        assert sum(1 for _ in iterator) == 19_999
        report = validate_submissions(m, schema)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert report.ok and report.submissions == 20_000
    assert peak < 4_000_000, f"peak {peak:,} bytes"
