"""The results file: appended line by line, indexed on open, repaired after a crash."""

from __future__ import annotations

import contextlib
import json
import logging
import random
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import runner.store._scan as scan_module
from runner.store import (
    DuplicateResultError,
    Durability,
    RecordStatus,
    ResultRecord,
    ResultsError,
    ResultsStore,
    RunFolder,
    RunFolderLockedError,
    scan_results,
)

ROOT = Path(__file__).resolve().parents[2]
OK, ERROR, CANCELLED, TIMEOUT = (
    RecordStatus.OK,
    RecordStatus.ERROR,
    RecordStatus.CANCELLED,
    RecordStatus.TIMEOUT,
)


def record(key: str, status: RecordStatus = OK, row: int = 0, **fields: object) -> ResultRecord:
    if status is OK:
        fields.setdefault("outputs", {"text": f"out-{key}"})
    else:
        fields.setdefault("error_type", "AppError")
        fields.setdefault("error_message", "boom")
    return ResultRecord(key=key, row=row, status=status, inputs={"text": key}, **fields)  # type: ignore[arg-type]


def lines_of(run_dir: Path) -> list[bytes]:
    return (run_dir / "results.jsonl").read_bytes().splitlines(keepends=True)


def test_line_starts_with_key_and_status(tmp_path: Path) -> None:
    """Each line starts `{"key":...,"status":...,` and parses back to the same record."""
    rec = record("a1", OK, row=3, causes=("QueueFull",), replica="http://r1/", run_time=1.5)
    line = rec.to_line()
    assert line.startswith(b'{"key":"a1","status":"ok",') and line.endswith(b"}\n")
    assert ResultRecord.from_line(line) == rec


def test_records_survive_reopen_with_counts(tmp_path: Path) -> None:
    """What was appended is indexed again when the folder is reopened."""
    with ResultsStore.open(tmp_path) as store:
        store.append(record("a", OK, 0))
        store.append(record("b", ERROR, 1))
        store.append(record("c", CANCELLED, 2))
        store.append(record("d", TIMEOUT, 3))
    with ResultsStore.open(tmp_path) as store:
        assert store.counts() == {OK: 1, ERROR: 1, CANCELLED: 1, TIMEOUT: 1}
        assert store.is_done("a") and not store.is_done("b") and not store.is_done("zzz")
        assert store.status_of("d") is TIMEOUT and store.status_of("zzz") is None
        assert (
            set(store.ok_keys()) == {"a"} and "a" in store.ok_keys() and "b" not in store.ok_keys()
        )
        assert len(store) == 4 and store.lines == 4


def test_error_then_ok_counts_as_ok(tmp_path: Path) -> None:
    """The latest record of a key counts: a failure retried on resume becomes ok."""
    with ResultsStore.open(tmp_path) as store:
        store.append(record("a", ERROR))
        store.append(record("a", TIMEOUT))
        assert store.status_of("a") is TIMEOUT
    with ResultsStore.open(tmp_path) as store:
        assert store.status_of("a") is TIMEOUT
        store.append(record("a", OK))
        assert store.counts() == {OK: 1, ERROR: 0, CANCELLED: 0, TIMEOUT: 0}
    with ResultsStore.open(tmp_path) as store:
        assert store.is_done("a") and store.lines == 3 and len(store) == 1


def test_second_ok_for_a_key_is_refused(tmp_path: Path) -> None:
    """A key is written ok at most once, within a session and across resumes."""
    with ResultsStore.open(tmp_path) as store:
        store.append(record("a", OK))
        with pytest.raises(DuplicateResultError, match="already recorded ok"):
            store.append(record("a", OK))
    with ResultsStore.open(tmp_path) as store:
        with pytest.raises(DuplicateResultError):
            store.append(record("a", OK))
        with pytest.raises(DuplicateResultError):  # nor anything else after ok
            store.append(record("a", ERROR))
    assert len(lines_of(tmp_path)) == 1


def test_torn_last_line_is_repaired(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A line cut by a crash is moved to results.jsonl.torn; the next line starts fresh."""
    with ResultsStore.open(tmp_path) as store:
        store.append(record("a", OK, 0))
        store.append(record("b", ERROR, 1))
    half = record("c", OK, 2).to_line()[:40]
    with open(tmp_path / "results.jsonl", "ab") as handle:
        handle.write(half)
    with caplog.at_level(logging.WARNING), ResultsStore.open(tmp_path) as store:
        assert store.repaired_bytes == len(half)
        assert store.counts()[OK] == 1 and len(store) == 2 and store.status_of("c") is None
        store.append(record("c", OK, 2))
    assert "torn line" in caplog.text
    assert (tmp_path / "results.jsonl.torn").read_bytes() == half + b"\n"
    lines = lines_of(tmp_path)
    assert [json.loads(line)["key"] for line in lines] == ["a", "b", "c"]
    assert all(line.endswith(b"\n") for line in lines)


def test_second_writer_is_refused(tmp_path: Path) -> None:
    """Two runs appending to one folder would break ok-once: the second is refused."""
    with ResultsStore.open(tmp_path), pytest.raises(RunFolderLockedError, match="another process"):
        ResultsStore.open(tmp_path)
    ResultsStore.open(tmp_path).close()  # released on close


def test_append_after_close_raises(tmp_path: Path) -> None:
    """A closed store says so instead of writing nowhere."""
    store = ResultsStore.open(tmp_path)
    store.close()
    store.close()
    with pytest.raises(ResultsError, match="closed"):
        store.append(record("a"))


def test_durability_line_writes_the_same_lines(tmp_path: Path) -> None:
    """fdatasync per line changes durability, not content."""
    rec = record("a")
    with ResultsStore.open(tmp_path, durability=Durability.LINE) as store:
        store.append(rec)
    assert lines_of(tmp_path) == [rec.to_line()]


def test_odd_keys_and_bad_lines_across_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Escaped keys, a line longer than a block and garbage lines: the index matches json.loads."""
    monkeypatch.setattr(scan_module, "_BLOCK_SIZE", 256)  # many blocks, some of one line
    keys = ['quote"d', "back\\slash", "ünï", "plain", "x" * 600, "a/b/../c"]
    rng = random.Random(3)
    with ResultsStore.open(tmp_path) as store:
        for i in range(200):
            key = keys[i % len(keys)] + str(i % 50)
            if not store.is_done(key):
                store.append(record(key, rng.choice([OK, ERROR, TIMEOUT]), i))
    with open(tmp_path / "results.jsonl", "ab") as handle:
        handle.write(b"not json at all\n{}\n")
    expected: dict[str, str] = {}
    for line in lines_of(tmp_path):
        try:
            data = json.loads(line)
            expected[data["key"]] = data["status"]
        except (ValueError, KeyError):
            continue
    scan = scan_results(tmp_path / "results.jsonl")
    assert {k: s.value for k, s in scan.status.items()} == expected
    assert scan.corrupt == 2 and scan.lines == len(lines_of(tmp_path))


def test_hand_written_ok_then_error_keeps_ok(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """If a file says ok then error for a key (not written by us), the ok stays final."""
    lines = [record("a", OK).to_line(), record("a", ERROR).to_line(), record("a", OK).to_line()]
    (tmp_path / "results.jsonl").write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING), ResultsStore.open(tmp_path) as store:
        assert store.status_of("a") is OK and store.counts()[OK] == 1
    assert "extra ok" in caplog.text


def test_files_dir_stays_inside_the_run_folder(tmp_path: Path) -> None:
    """Any key maps to one folder directly under files/, distinct keys to distinct folders."""
    folder = RunFolder(root=tmp_path)
    keys = ["abc123", "../../etc", "a/b", ".", "..", "CON", "con.txt", "x" * 300, "ünï"]
    dirs = [folder.files_dir(k) for k in keys]
    assert folder.files_dir("abc123") == tmp_path / "files" / "abc123"
    assert all(d.parent == tmp_path / "files" and d.name not in (".", "..") for d in dirs)
    assert len(set(dirs)) == len(keys)
    assert folder.relative(tmp_path / "files" / "abc123" / "o.wav") == "files/abc123/o.wav"
    with pytest.raises(ValueError, match="outside"):
        folder.relative(tmp_path.parent / "elsewhere.txt")


# --- kill -9 at random moments ------------------------------------------------------

WRITER = """
import itertools, os, random, sys
sys.path.insert(0, sys.argv[1])
from runner.store import RecordStatus, ResultRecord, ResultsStore

real_write = os.write
def announced_write(fd, data):
    # Say when a large write starts, so the test can kill us in the middle of it.
    if len(data) > 1_000_000:
        sys.stdout.write("big\\n")
        sys.stdout.flush()
    return real_write(fd, data)
os.write = announced_write

rng = random.Random(int(sys.argv[3]))
with ResultsStore.open(sys.argv[2]) as store:
    print("ready", flush=True)
    for i in itertools.count():
        key = f"k{i % 20_000}"
        if store.is_done(key):
            continue
        text = "x" * (2_000_000 if rng.random() < 0.01 else 10)
        status = rng.choice([RecordStatus.OK, RecordStatus.ERROR])
        store.append(ResultRecord(key=key, row=i % 20_000, status=status, inputs={"text": text},
                                  outputs={"out": text} if status is RecordStatus.OK else None))
"""


@pytest.mark.timeout(120)
def test_kill_9_never_leaves_a_broken_file(tmp_path: Path) -> None:
    """Writers killed by SIGKILL (at random moments, or as a large line is being written)
    leave, after repair, only whole records and no key ok twice."""
    rng = random.Random(2024)
    run_dir = tmp_path / "run"
    for round_ in range(16):
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(ROOT), str(run_dir), str(round_)],
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"  # the store is open and repaired
        if round_ % 2:
            assert child.stdout.readline() == b"big\n"
        else:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=rng.uniform(0.0, 0.1))
        child.kill()
        assert child.wait(timeout=30) == -signal.SIGKILL
        child.stdout.close()

    with ResultsStore.open(run_dir) as store:
        ok_keys = len(store.ok_keys())
    lines = lines_of(run_dir)
    records = [json.loads(line) for line in lines]
    assert all(line.endswith(b"\n") for line in lines)
    oks = Counter(r["key"] for r in records if r["status"] == "ok")
    assert oks and max(oks.values()) == 1
    assert ok_keys == len(oks)


def test_many_keys_index_as_a_dict_would(tmp_path: Path) -> None:
    """Thousands of keys as the runner makes them (20 hex digits, sharing prefixes), a few
    others, each recorded failed, cancelled or ok in random order: the store's statuses,
    counts and ok keys, live and after reopening, are the latest record's (ok final)."""
    rng = random.Random(13)
    keys = [f"{rng.getrandbits(80):020x}" for _ in range(6000)]
    keys += [f"{keys[0][:4]}{i:016x}" for i in range(50)]  # one crowded bucket
    keys += [f"{keys[1][:16]}{i:04x}" for i in range(50)]  # sharing all but 4 digits
    keys += ["a", "0x" + keys[1][2:], keys[2].upper(), "é" * 20, "k" * 20]
    expected: dict[str, RecordStatus] = {}
    with ResultsStore.open(tmp_path) as store:
        for _ in range(3):
            for key in rng.sample(keys, len(keys)):
                if expected.get(key) is OK:
                    continue
                status = rng.choice([OK, ERROR, CANCELLED, TIMEOUT])
                store.append(record(key, status))
                expected[key] = status
        live = {key: store.status_of(key) for key in keys}
    with ResultsStore.open(tmp_path) as store:
        reopened = {key: store.status_of(key) for key in keys}
        assert store.counts() == {s: list(expected.values()).count(s) for s in RecordStatus}
        assert set(store.ok_keys()) == {k for k, s in expected.items() if s is OK}
        assert len(store) == len(keys) and store.status_of(keys[0][:-1] + "g") is None
    assert live == reopened == expected
    assert dict(scan_results(tmp_path / "results.jsonl").status.items()) == expected


@pytest.mark.parametrize("block_size", [64, 300, 1 << 20])
def test_scan_agrees_with_reading_each_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_size: int
) -> None:
    """Files not written by the store alone (repeated ok records, torn and joined lines,
    keys sharing 16 of their 20 digits, keys of other shapes): the status and the line
    that count for each key are those a `json.loads` of every line gives (first ok, else
    latest)."""
    monkeypatch.setattr(scan_module, "_BLOCK_SIZE", block_size)
    rng = random.Random(block_size)
    for trial in range(40):
        keys = [f"{rng.getrandbits(80):020x}" for _ in range(rng.randint(1, 20))]
        keys += [keys[0][:16] + "ffff", keys[0][:16] + "0000", "custom", 'q"uote']
        lines = []
        for _ in range(rng.randint(1, 120)):
            status = rng.choice(list(RecordStatus))
            line = record(rng.choice(keys), status).to_line().rstrip(b"\n")
            if rng.random() < 0.5:
                line = line[:-1] + b',"submitted_at":"2025-01-01T00:00:00.000+00:00"}'
            chance = rng.random()
            if chance < 0.04:
                line = line[: rng.randint(0, len(line))]  # torn
            elif chance < 0.06:
                line = line[:45] + line  # a torn record joined to the next
            lines.append(line)
        path = tmp_path / f"results-{trial}.jsonl"
        path.write_bytes(b"\n".join(lines) + b"\n")
        expected: dict[str, str] = {}
        line_of: dict[str, int] = {}
        for ordinal, line in enumerate(lines):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if expected.get(data["key"]) != "ok":
                expected[data["key"]], line_of[data["key"]] = data["status"], ordinal
        scan = scan_results(path)
        assert {k: s.value for k, s in scan.status.items()} == expected, trial
        counting = scan_module.counting_lines(path, scan)
        assert [i for i, flag in enumerate(counting) if flag] == sorted(line_of.values())
