"""The index snapshot (`cache/index.bin`): a reopened store trusts it only while the part
of `results.jsonl` it covers is unchanged, and applies the lines written after it."""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from runner.store import RecordStatus, ResultRecord, ResultsStore, scan_results

OK, ERROR, CANCELLED, TIMEOUT = (
    RecordStatus.OK,
    RecordStatus.ERROR,
    RecordStatus.CANCELLED,
    RecordStatus.TIMEOUT,
)
#: More keys than the store keeps a snapshot for.
KEYS = 12_000


def record(key: str, status: RecordStatus, row: int = 0) -> ResultRecord:
    return ResultRecord(
        key=key,
        row=row,
        status=status,
        inputs={"text": key},
        outputs={"text": "out"} if status is OK else None,
        error_type=None if status is OK else "AppError",
        error_message=None if status is OK else "boom",
        submitted_at="2025-01-01T00:00:00.000+00:00",
    )


def fill(run_dir: Path, rng: random.Random) -> dict[str, RecordStatus]:
    """A closed store of KEYS keys (20 hex digits, a few others), some failed first."""
    keys = [f"{rng.getrandbits(80):020x}" for _ in range(KEYS)] + ["custom", "ünï"]
    expected: dict[str, RecordStatus] = {}
    with ResultsStore.open(run_dir) as store:
        for key in keys:
            if rng.random() < 0.1:
                store.append(record(key, ERROR))
            status = rng.choice([OK, OK, OK, ERROR, CANCELLED, TIMEOUT])
            store.append(record(key, status))
            expected[key] = status
    return expected


def statuses(run_dir: Path, keys: list[str]) -> dict[str, RecordStatus | None]:
    with ResultsStore.open(run_dir) as store:
        return {key: store.status_of(key) for key in keys}


def full_scan(run_dir: Path) -> dict[str, RecordStatus]:
    return dict(scan_results(run_dir / "results.jsonl").status.items())


def test_a_closed_store_saves_its_index_and_a_reopened_one_uses_it(tmp_path: Path) -> None:
    expected = fill(tmp_path, random.Random(1))
    assert (tmp_path / "cache" / "index.bin").is_file()
    keys = list(expected)
    with ResultsStore.open(tmp_path) as store:
        assert {key: store.status_of(key) for key in keys} == expected
        assert store.counts() == {s: list(expected.values()).count(s) for s in RecordStatus}
        assert set(store.ok_keys()) == {k for k, s in expected.items() if s is OK}
        assert store.lines == len((tmp_path / "results.jsonl").read_bytes().splitlines())
        store.append(record("f" * 20, OK))  # and it goes on from there
    assert statuses(tmp_path, ["f" * 20]) == {"f" * 20: OK}
    assert full_scan(tmp_path) == expected | {"f" * 20: OK}


def test_lines_a_killed_run_appended_after_the_snapshot_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A run killed before closing the store leaves lines the snapshot does not cover,
    and maybe a torn last line: they are read on the next open, as a full scan would."""
    expected = fill(tmp_path, random.Random(2))
    failed = [k for k, s in expected.items() if s is not OK][:50]
    new = [f"{i:020x}" for i in range(30)]
    with open(tmp_path / "results.jsonl", "ab") as handle:  # as the killed run wrote them
        for key in failed:
            handle.write(record(key, OK).to_line())
            expected[key] = OK
        for key in new:
            handle.write(record(key, TIMEOUT).to_line())
            expected[key] = TIMEOUT
        handle.write(record("e" * 20, OK).to_line()[:40])  # torn by the kill
    with caplog.at_level(logging.WARNING):
        got = statuses(tmp_path, [*expected, "e" * 20])
    assert "torn line" in caplog.text
    assert got == expected | {"e" * 20: None}
    assert full_scan(tmp_path) == expected


def test_a_results_file_edited_by_hand_is_read_again(tmp_path: Path) -> None:
    """An edit anywhere in the part the snapshot covers, even one keeping the file's
    size, makes the store scan the file again: the edit counts, not the snapshot."""
    expected = fill(tmp_path, random.Random(3))
    path = tmp_path / "results.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    middle = next(i for i in range(len(lines) // 2, len(lines)) if b'"status":"ok"' in lines[i])
    key = json.loads(lines[middle])["key"]
    renamed = ("0" if key[0] != "0" else "1") + key[1:]
    lines[middle] = lines[middle].replace(key.encode(), renamed.encode())
    path.write_bytes(b"".join(lines))  # same size, one key changed
    expected[renamed] = expected.pop(key)
    assert statuses(tmp_path, [key, renamed]) == {key: None, renamed: OK}
    assert full_scan(tmp_path) == expected

    del lines[: len(lines) // 3]  # shorter than the part the snapshot covered
    path.write_bytes(b"".join(lines))
    survivors = {json.loads(line)["key"] for line in lines}
    got = statuses(tmp_path, list(expected))
    assert {k for k, s in got.items() if s is not None} == survivors


def test_a_damaged_snapshot_is_ignored(tmp_path: Path) -> None:
    expected = fill(tmp_path, random.Random(4))
    snapshot = tmp_path / "cache" / "index.bin"
    data = bytearray(snapshot.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the arrays
    snapshot.write_bytes(bytes(data))
    assert statuses(tmp_path, list(expected)) == expected
    snapshot.write_bytes(b"garbage")
    assert statuses(tmp_path, list(expected)) == expected
