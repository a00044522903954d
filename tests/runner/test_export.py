"""Reading a run folder back: the exported table, `read_status`, summary and manifest files."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import runner.store._scan as scan_module
from runner.store import (
    RecordStatus,
    ResultRecord,
    ResultsStore,
    export,
    load_table,
    read_manifest,
    read_status,
    read_summary,
    write_manifest,
    write_summary,
)

OK, ERROR, CANCELLED, TIMEOUT = (
    RecordStatus.OK,
    RecordStatus.ERROR,
    RecordStatus.CANCELLED,
    RecordStatus.TIMEOUT,
)
WHEN = "2026-11-27T09:41:15.405+00:00"


def rec(key: str, row: int, status: RecordStatus, **fields: Any) -> ResultRecord:
    fields.setdefault("inputs", {"text": f"text {row}", "audio": f"data/{key}.wav", "beam": 2})
    fields.setdefault("replica", "http://127.0.0.1:7860/")
    return ResultRecord(key=key, row=row, status=status, finished_at=WHEN, **fields)


RECORDS = [
    rec("k-b", 0, ERROR, error_type="QueueFull", error_message="queue is full", attempts=2),
    rec(
        "k-a",
        2,
        OK,
        outputs={"label": "positive", "score": 0.875, "meta": {"lang": "en", "ids": [1, 2]}},
        queue_time=0.25,
        run_time=1.125,
    ),
    rec(
        "k-c",
        1,
        ERROR,
        error_type="AppError",
        error_message='bad "input", line 2',
        attempts=3,
        causes=("ConnectionError", "QueueFull"),
    ),
    rec("k-d", 3, CANCELLED, error_type="Cancelled", error_message="interrupted"),
    rec("k-b", 0, OK, outputs={"label": "negative", "score": 0.125, "meta": None}, run_time=2.0),
    rec("k-e", 4, OK, outputs={"label": 5, "score": 1.0, "meta": {"x": "ü"}}, attempts=2),
]

# The table export writes, by key, in row order; nested values as JSON text.
EXPECTED_JSON = {
    "key": ["k-b", "k-c", "k-a", "k-d", "k-e"],
    "row": [0, 1, 2, 3, 4],
    "status": ["ok", "error", "ok", "cancelled", "ok"],
    "inputs.text": ["text 0", "text 1", "text 2", "text 3", "text 4"],
    "inputs.audio": [
        "data/k-b.wav",
        "data/k-c.wav",
        "data/k-a.wav",
        "data/k-d.wav",
        "data/k-e.wav",
    ],
    "inputs.beam": [2, 2, 2, 2, 2],
    "outputs.label": ["negative", None, "positive", None, "5"],
    "outputs.score": [0.125, None, 0.875, None, 1.0],
    "outputs.meta": [None, None, '{"lang": "en", "ids": [1, 2]}', None, '{"x": "ü"}'],
    "error_type": [None, "AppError", None, "Cancelled", None],
    "error_message": [None, 'bad "input", line 2', None, "interrupted", None],
    "attempts": [1, 3, 1, 1, 2],
    "causes": ["[]", '["ConnectionError", "QueueFull"]', "[]", "[]", "[]"],
    "replica": ["http://127.0.0.1:7860/"] * 5,
    "queue_time": [None, None, 0.25, None, None],
    "run_time": [2.0, None, 1.125, None, None],
    "finished_at": [WHEN] * 5,
}
EXPECTED_NATIVE = {
    **EXPECTED_JSON,
    "outputs.label": ["negative", None, "positive", None, 5],
    "outputs.meta": [None, None, {"lang": "en", "ids": [1, 2]}, None, {"x": "ü"}],
    "causes": [[], ["ConnectionError", "QueueFull"], [], [], []],
}

READ_BACK = {
    "csv": lambda path: pd.read_csv(path),
    "parquet": lambda path: pd.read_parquet(path),
    "jsonl": lambda path: pd.read_json(path, lines=True, convert_dates=False),
}


def write_run(run_dir: Path, records: list[ResultRecord]) -> None:
    with ResultsStore.open(run_dir) as store:
        for record in records:
            store.append(record)


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def assert_table(table: pd.DataFrame, expected: Mapping[str, Any]) -> None:
    assert list(table.columns) == list(expected)
    for column, values in expected.items():
        got = table[column].tolist()
        same = [(missing(g) and missing(e)) or g == e for g, e in zip(got, values, strict=True)]
        assert all(same), (column, got, values)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_export_round_trips(tmp_path: Path, fmt: str) -> None:
    """Reading the exported file back with pandas gives the latest record per key, by row."""
    write_run(tmp_path, RECORDS)
    out = export(tmp_path, fmt)  # type: ignore[arg-type]
    assert out == tmp_path / f"export.{fmt}"
    expected = EXPECTED_NATIVE if fmt == "jsonl" else EXPECTED_JSON
    assert_table(READ_BACK[fmt](out), expected)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_export_across_many_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The chunked reader picks the same rows when the file spans many small blocks."""
    records = [
        rec(
            f"key-{i % 37:03d}",
            i % 37,
            OK if i >= 60 else ERROR,
            outputs={"n": i} if i >= 60 else None,
        )
        for i in range(97)
    ]
    write_run(tmp_path, records)
    monkeypatch.setattr(scan_module, "_BLOCK_SIZE", 300)
    table = load_table(tmp_path)
    assert table["key"].tolist() == [f"key-{i:03d}" for i in range(37)]
    latest = {r.key: r for r in records}
    assert table["status"].tolist() == [latest[k].status.value for k in table["key"]]
    expected_n = [latest[k].outputs["n"] if latest[k].outputs else None for k in table["key"]]  # type: ignore[index]
    assert [None if missing(v) else v for v in table["outputs.n"]] == expected_n


def test_export_of_an_empty_run_has_the_fixed_columns(tmp_path: Path) -> None:
    """No results yet: a table with the fixed columns and no rows."""
    out = export(tmp_path, "csv", tmp_path / "elsewhere" / "t.csv")
    table = pd.read_csv(out)
    assert len(table) == 0 and list(table.columns)[:3] == ["key", "row", "status"]


def test_export_refuses_bad_targets(tmp_path: Path) -> None:
    """An unknown format, or the results file itself as output, is refused."""
    write_run(tmp_path, RECORDS[:1])
    with pytest.raises(ValueError, match="unknown export format"):
        export(tmp_path, "xlsx")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="results file itself"):
        export(tmp_path, "jsonl", tmp_path / "results.jsonl")
    assert len((tmp_path / "results.jsonl").read_bytes().splitlines()) == 1


def test_read_status_counts_and_standing_failures(tmp_path: Path) -> None:
    """Counts by key, the last failures still standing (oldest first), completeness."""
    records = [
        rec(f"f{i:02d}", i, ERROR, error_type="AppError", error_message=f"m{i}") for i in range(15)
    ]
    records += [rec("f14", 14, OK), rec("t", 20, TIMEOUT, error_type="Timeout"), *RECORDS]
    write_run(tmp_path, records)
    write_summary(tmp_path, {"total": 25, "elapsed": 3.5})

    status = read_status(tmp_path, last_failures=4)
    assert status.counts == {OK: 4, ERROR: 15, CANCELLED: 1, TIMEOUT: 1}
    assert (status.keys, status.lines, status.total, status.pending) == (21, 23, 25, 4)
    assert status.failed == 16 and status.ok == 4 and status.complete is False
    failures = status.last_failures
    assert [f.key for f in failures] == ["f12", "f13", "t", "k-c"]  # f14 was made ok since
    assert failures[-1].row == 1 and failures[-1].error_type == "AppError"
    assert failures[-1].error_message == 'bad "input", line 2' and failures[-1].attempts == 3


def test_read_status_complete_and_unknown_total(tmp_path: Path) -> None:
    """complete is None without a total, True once every submission is ok."""
    write_run(tmp_path, [rec("a", 0, OK), rec("b", 1, OK)])
    assert read_status(tmp_path).complete is None
    write_summary(tmp_path, {"total": 2})
    status = read_status(tmp_path)
    assert status.complete is True and status.last_failures == () and status.pending == 0


def test_read_status_reports_a_torn_tail_without_repairing(tmp_path: Path) -> None:
    """`spacerun status` only reads: a partial last line is reported, not cut."""
    write_run(tmp_path, [rec("a", 0, OK)])
    results = tmp_path / "results.jsonl"
    with open(results, "ab") as handle:
        handle.write(b'{"key":"b","sta')
    before = results.read_bytes()
    status = read_status(tmp_path)
    assert status.torn_bytes == 15 and status.keys == 1 and status.counts[OK] == 1
    assert results.read_bytes() == before


def test_read_status_of_a_missing_folder(tmp_path: Path) -> None:
    """A path that is not a run folder is an error; an empty folder has zero counts."""
    with pytest.raises(FileNotFoundError, match="no run folder"):
        read_status(tmp_path / "nope")
    status = read_status(tmp_path)
    assert status.keys == 0 and sum(status.counts.values()) == 0


def test_summary_and_manifest_round_trip(tmp_path: Path) -> None:
    """summary.json and manifest.yaml are written whole and read back the same."""
    assert read_summary(tmp_path) is None and read_manifest(tmp_path) is None
    summary = {"total": 3, "counts": {"ok": 2, "error": 1}, "failures_by_cause": {"QueueFull": 4}}
    write_summary(tmp_path, summary)
    write_summary(tmp_path, {**summary, "total": 4})
    assert read_summary(tmp_path) == {**summary, "total": 4}
    manifest = {"app": {"url": "http://127.0.0.1:7860"}, "inputs": {"rows": [{"text": "héllo"}]}}
    write_manifest(tmp_path, manifest)
    assert read_manifest(tmp_path) == manifest
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.yaml", "summary.json"]
    (tmp_path / "summary.json").write_text("{not json")
    assert read_summary(tmp_path) is None
