"""Broken and hostile files: manifests, CSV sources, results files and run folders.

Each case of the hostile-input issue: the error a user gets (class or message, with the
file and line), a peak-memory bound measured in a subprocess where input can be large,
and, for run folders, exit status 2 with no traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.apps import RunningApp
from support.cli import cli_env, spacerun
from support.measure import run_measured
from support.other_user import CannotSwitchUser, drop_to_nobody, readable_runtime

from runner.errors import ManifestError
from runner.inputs._sources import iter_rows
from runner.manifest import load_manifest
from runner.store import ResultRecord, ResultsStore, RunFolderError, scan_results
from runner.store._record import RecordStatus

APP = "http://127.0.0.1:9"  # nothing listens: these cases fail before any app is asked


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def child(code: str, cwd: Path, timeout: float = 120) -> tuple[int, str, float]:
    """Run python `code` in a measured subprocess: (exit code, stderr+stdout, peak MB)."""
    done = run_measured(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=cli_env(), timeout=timeout
    )
    return done.returncode, done.err + done.out, done.peak_mb


# -- YAML ---------------------------------------------------------------------------------

TAGGED = {
    "a tag on a list": ("app: !!python/object/apply:os.system [touch pwned]", 1, "list"),
    "a tag on a mapping": ("app:\n  url: !!python/object:os.Foo {a: 1}", 2, "mapping"),
    "a tag on a value": ("name: !!binary aGk=", 1, "value"),
    "a custom tag": ("name: !env HOME", 1, "value"),
    "a tag on a key": ("? !!python/name:os.system\n: 1", 1, "value"),
}


@pytest.mark.parametrize("case", sorted(TAGGED))
def test_every_tag_but_plain_data_is_refused_with_its_line(tmp_path: Path, case: str) -> None:
    text, line, kind = TAGGED[case]
    path = tmp_path / "m.yaml"
    path.write_text(f"inputs: {{rows: [{{text: a}}]}}\n{text}\n")
    with pytest.raises(ManifestError) as caught:
        load_manifest(path, app=APP)
    tag = text.split("!", 1)[1].split()[0].rstrip(",")
    message = str(caught.value)
    assert message.startswith(f"{path}:{line + 1}:") or f"m.yaml:{line + 1}:" in message
    assert f"!{tag}" in message and f"on this {kind}" in message
    assert not (tmp_path / "pwned").exists() and not Path("pwned").exists()


def test_plain_tags_still_work(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "app: !!str http://x.test\ninputs: {rows: [{n: !!int 3}]}\n")
    manifest = load_manifest(path)
    assert manifest.inputs.rows[0]["n"] == 3


def test_tags_in_a_set_override_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "app: http://x.test\n")
    with pytest.raises(ManifestError, match="python/object"):
        load_manifest(path, overrides=["name=!!python/object/apply:os.system [ls]"])


def test_billion_laughs_stops_early_in_little_memory(tmp_path: Path) -> None:
    lines = ["a: &a [x, x, x, x, x, x, x, x, x]"]
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefghi"[level]
        lines.append(f"{name}: &{name} [{', '.join([f'*{previous}'] * 9)}]")
    write(tmp_path / "laughs.yaml", "\n".join(lines) + "\n")
    code, output, peak = child(
        """
        from runner.manifest import load_manifest
        from runner.errors import ManifestError
        try:
            load_manifest("laughs.yaml", app="http://127.0.0.1:9")
        except ManifestError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert code == 0, output
    assert "aliases (*name) repeat more than 100,000 values" in output
    assert "laughs.yaml:6:1: f:" in output  # the first key whose value expands that far
    assert peak < 150


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "m.yaml", "app: http://x.test\ninputs: {rows: &r [*r]}\n")
    with pytest.raises(ManifestError, match="refers to itself"):
        load_manifest(path)


def test_empty_and_binary_manifests_get_clear_errors(tmp_path: Path) -> None:
    write(tmp_path / "empty.yaml", "")
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    for name, expected in (("empty.yaml", "empty"), ("binary.yaml", "cannot read")):
        done = spacerun("validate", str(tmp_path / name))
        assert done.returncode == 2 and expected in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


# -- CSV ----------------------------------------------------------------------------------


def csv_manifest(tmp_path: Path, data: bytes, encoding: str = "utf-8") -> Iterator[object]:
    (tmp_path / "rows.csv").write_bytes(data)
    path = write(
        tmp_path / "m.yaml", f"app: {APP}\ninputs: {{csv: rows.csv, encoding: {encoding}}}\n"
    )
    return iter_rows(load_manifest(path))


@pytest.mark.parametrize("bad_line", [3, 2002])
def test_a_latin1_byte_is_reported_on_its_line(tmp_path: Path, bad_line: int) -> None:
    data = b"text\n" + b"plain\n" * (bad_line - 2) + "caf\xe9\n".encode("latin-1") + b"ok\n"
    with pytest.raises(ManifestError) as caught:
        list(csv_manifest(tmp_path, data))
    assert caught.value.line == bad_line
    assert "inputs.encoding" in str(caught.value) and "rows.csv" in str(caught.value)


def test_a_nul_byte_is_reported_on_its_line(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="NUL byte") as caught:
        list(csv_manifest(tmp_path, b"text\na\nb\x00c\n"))
    assert caught.value.line == 3


def test_utf16_csv_reads_with_its_encoding(tmp_path: Path) -> None:
    rows = list(csv_manifest(tmp_path, "text\ncafé\n".encode("utf-16"), encoding="utf-16"))
    assert [r.values for r in rows] == [{"text": "café"}]  # type: ignore[attr-defined]


def test_a_cell_over_the_csv_limit_names_its_line(tmp_path: Path) -> None:
    data = b"text\nshort\n" + b'"' + b"x" * 200_000 + b'"\n'
    with pytest.raises(ManifestError, match="longer than 131,072 characters") as caught:
        list(csv_manifest(tmp_path, data))
    assert caught.value.line == 3


def test_a_200_mb_field_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    with open(tmp_path / "rows.csv", "wb") as out:
        out.write(b"text\nshort\nshort\n")
        block = b"x" * (1 << 20)
        for _ in range(200):
            out.write(block)
        out.write(b"\n")
    write(tmp_path / "m.yaml", f"app: {APP}\ninputs: {{csv: rows.csv}}\n")
    code, output, peak = child(
        """
        from runner.errors import ManifestError
        from runner.inputs._sources import iter_rows
        from runner.manifest import load_manifest
        try:
            list(iter_rows(load_manifest("m.yaml")))
        except ManifestError as exc:
            print(exc)
        """,
        tmp_path,
    )
    assert code == 0, output
    assert "rows.csv:4: has a line longer than 16 MiB" in output
    assert peak < 150


# -- results.jsonl ------------------------------------------------------------------------


def record(key: str, row: int) -> ResultRecord:
    return ResultRecord(
        key=key, row=row, status=RecordStatus.OK, inputs={"x": row}, outputs={"y": row * 2}
    )


def test_a_torn_record_anywhere_never_counts_as_ok(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Cut records at random positions, mid-file (followed by a newline, or glued to the
    next record) and at the end: none of them, and no glued neighbour, counts."""
    rng = random.Random(11)
    keys = [f"{i:020x}" for i in range(200)]
    with ResultsStore.open(tmp_path) as store:
        for row, key in enumerate(keys):
            store.append(record(key, row))
    lines = (tmp_path / "results.jsonl").read_bytes().splitlines(keepends=True)
    torn = set(rng.sample(range(0, len(lines) - 2, 2), 20))  # none next to another
    glued: set[int] = set()
    out = []
    for index, line in enumerate(lines):
        if index in torn:
            cut = line[: rng.randrange(1, len(line) - 1)]
            if rng.random() < 0.5:
                out.append(cut + b"\n")
            else:
                out.append(cut)  # the next record ends up on the same line
                glued.add(index + 1)
        else:
            out.append(line)
    out[-1] = out[-1][: len(out[-1]) // 2]  # and a torn tail
    (tmp_path / "results.jsonl").write_bytes(b"".join(out))
    caplog.set_level("WARNING", logger="runner.results")
    scan = scan_results(tmp_path / "results.jsonl")
    lost = {keys[i] for i in torn | glued | {len(lines) - 1}}
    assert set(scan.status) == set(keys) - lost
    assert scan.corrupt == len(torn)
    warned = [r.getMessage() for r in caplog.records if "not a whole record" in r.getMessage()]
    assert len(warned) == len(torn) and all("byte " in w for w in warned)


def test_resume_reruns_the_rows_of_torn_records(calculator_app: RunningApp, tmp_path: Path) -> None:
    """After cutting records mid-file and at the end, a resume runs exactly the rows whose
    record was lost; in the end every row has exactly one whole ok record."""
    rows = 40
    (tmp_path / "rows.csv").write_text(
        "num1,operation,num2\n" + "".join(f"{i},add,1\n" for i in range(rows))
    )
    run_dir = tmp_path / "run"
    args = ["run", str(tmp_path / "rows.csv"), "--app", calculator_app.url]
    args += ["--endpoint", "/predict", "--set", f"output.dir={run_dir}", "--quiet"]
    assert spacerun(*args).returncode == 0
    results = run_dir / "results.jsonl"
    lines = results.read_bytes().splitlines(keepends=True)
    rng = random.Random(7)
    for index in rng.sample(range(len(lines) - 1), 6):
        line = lines[index]
        lines[index] = line[: rng.randrange(1, len(line) - 1)] + b"\n"
    lines[-1] = lines[-1][:-10]
    results.write_bytes(b"".join(lines))
    done = spacerun(*args)
    assert done.returncode == 0, done.stderr
    assert "not a whole record" in done.stderr
    ok: Counter[int] = Counter()
    for line in results.read_bytes().splitlines():
        try:
            data = json.loads(line)
        except ValueError:
            continue
        ok[data["row"]] += data["status"] == "ok"
    assert ok == Counter({row: 1 for row in range(rows)})


# -- run folders --------------------------------------------------------------------------


def rows_manifest(folder: Path, run_dir: str, app: str = APP) -> Path:
    return write(
        folder / "m.yaml",
        f"app: {app}\ninputs: {{rows: [{{text: a}}]}}\noutput: {{dir: {run_dir}}}\n",
    )


def test_output_dir_naming_a_file_fails_validate_and_run(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("mine")
    manifest = rows_manifest(tmp_path, "afile")
    for command in ("validate", "run"):
        done = spacerun(command, str(manifest))
        assert done.returncode == 2, done.stderr
        assert "m.yaml:3:" in done.stderr and "output.dir" in done.stderr
        assert "is a file" in done.stderr and "Traceback" not in done.stderr
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_file_where_the_files_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "files").write_text("in the way")
    done = spacerun("run", str(rows_manifest(tmp_path, "run")))
    assert done.returncode == 2, done.stderr
    assert "run/files is a file where spacerun needs a folder" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder another user can enter (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="spacerun-perm-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(folder)], check=False)
        subprocess.run(["rm", "-rf", str(folder)], check=False)


def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
    """`spacerun ARGS` as the user nobody: root ignores file permissions, others do not.

    nobody runs a readable copy of the interpreter's environment and of the project (see
    `support.other_user`), so this works from a clone in a folder private to its owner."""
    if os.geteuid() != 0:
        return spacerun(*args)
    try:
        drop = drop_to_nobody()
        python, project = readable_runtime()
    except CannotSwitchUser as exc:
        pytest.skip(str(exc))
    return subprocess.run(
        [*drop, python, "-m", "runner.cli", *args],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=project,
        env={
            **cli_env(),
            "PYTHONPATH": str(project),
            "HOME": "/nonexistent",
            "PYTHONDONTWRITEBYTECODE": "1",
        },
    )


@pytest.mark.app
def test_no_permission_on_the_run_folder(shared_folder: Path) -> None:
    run_dir = shared_folder / "run"
    run_dir.mkdir()
    run_dir.chmod(0o555)
    manifest = rows_manifest(shared_folder, str(run_dir))
    manifest.chmod(0o644)
    done = as_nobody("validate", str(manifest))
    assert done.returncode == 2, done.stderr
    assert "no permission" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.app
def test_no_permission_on_the_results_file(shared_folder: Path) -> None:
    run_dir = shared_folder / "run"
    run_dir.mkdir()
    (run_dir / "results.jsonl").write_text("")
    (run_dir / "results.jsonl").chmod(0o444)
    subprocess.run(["chown", "-R", "65534:65534", str(run_dir)], check=True)
    (run_dir / "results.jsonl").chmod(0o444)
    manifest = rows_manifest(shared_folder, str(run_dir))
    done = as_nobody("run", str(manifest))
    assert done.returncode == 2, done.stderr
    assert "cannot open the results file" in done.stderr and "no permission" in done.stderr
    assert "Traceback" not in done.stderr


def test_disk_full_while_writing_a_record(calculator_app: RunningApp, tmp_path: Path) -> None:
    """Every write to /dev/full fails with ENOSPC, as a full disk does."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.jsonl").symlink_to("/dev/full")
    manifest = write(
        tmp_path / "m.yaml",
        f"""\
        app: {{url: {calculator_app.url}, endpoint: /predict}}
        inputs: {{rows: [{{num1: 1, operation: add, num2: 2}}]}}
        output: {{dir: run}}
        """,
    )
    done = spacerun("run", str(manifest))
    assert done.returncode == 2, done.stderr
    assert "cannot write a record to" in done.stderr and "the disk is full" in done.stderr
    assert "run the same command again" in done.stderr and "Traceback" not in done.stderr


def test_run_folder_error_is_raised_by_the_store(tmp_path: Path) -> None:
    (tmp_path / "run").write_text("a file")
    with pytest.raises(RunFolderError) as caught:
        ResultsStore.open(tmp_path / "run")
    assert caught.value.path.endswith("run/results.jsonl") or "run" in caught.value.path


def test_the_client_limits_can_be_set_in_the_manifest(tmp_path: Path) -> None:
    path = write(
        tmp_path / "m.yaml",
        """\
        app:
          url: http://x.test
          limits: {max_download_bytes: 8GiB, max_json_bytes: 64MB, read_timeout: 5m}
        """,
    )
    limits = load_manifest(path).app.limits
    assert (limits.max_download_bytes, limits.max_json_bytes) == (8 << 30, 64_000_000)
    assert limits.read_timeout == 300 and limits.connect_timeout == 10
    again = write(tmp_path / "again.yaml", json.dumps(load_manifest(path).to_dict()))
    assert load_manifest(again).app.limits == limits
    write(path, "app: {url: http://x.test, limits: {max_json_bytes: lots}}\n")
    with pytest.raises(ManifestError, match=r"m.yaml:1:.*app.limits.max_json_bytes"):
        load_manifest(path)
