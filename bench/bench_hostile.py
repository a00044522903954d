"""Hostile servers and hostile files: what spacerun does, its peak memory and time.

    python bench/bench_hostile.py [--root OTHER_CHECKOUT] [--timeout 150] [--only NAME]

Each case of the hostile-input issue runs against `tests/support/hostile.py` with the
client's default limits, in a fresh subprocess (`tests/support/hostile_child.py`, address
space capped at 2 GiB) whose peak RSS the kernel reports. `--root` runs the `jobs` of
another checkout (e.g. a `git worktree` of an older commit) to compare; a case still
running after `--timeout` seconds is killed and reported so. The file cases (manifests,
CSV sources, results files, run folders) run `spacerun` or a few lines of `runner` in a
measured subprocess the same way. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.hostile import Endless, HostileServer, file_data  # noqa: E402
from support.hostile_child import measure  # noqa: E402
from support.measure import run_measured  # noqa: E402

SERVER_FILE = "/tmp/gradio/0123abcd/out.bin"


def _huge_line(s: HostileServer) -> None:
    s.stream = "huge_line"


def _endless_file(s: HostileServer) -> None:
    s.files[SERVER_FILE] = Endless()
    s.outputs = [file_data(SERVER_FILE, size=10**6)]


def _bomb(route: str) -> Callable[[HostileServer], None]:
    return lambda s: setattr(s, route, "gzip_bomb")


def _silent(s: HostileServer) -> None:
    s.config = "silent"


CASES: dict[str, tuple[str, Callable[[HostileServer], None]]] = {
    "huge_line": ("the event stream sends one 300 MB line with no newline", _huge_line),
    "endless_file": ("a file output streamed without end (FileData says 1 MB)", _endless_file),
    "bomb_config": ("`/config` is a gzip bomb (10 MB -> 10 GiB)", _bomb("config")),
    "bomb_info": ("`/info` is a gzip bomb (10 MB -> 10 GiB)", _bomb("info")),
    "silent": ("a server that accepts and never answers", _silent),
}


def run_case(name: str, root: Path, timeout: float) -> dict[str, Any]:
    _, setup = CASES[name]
    with HostileServer() as server, tempfile.TemporaryDirectory() as tmp:
        setup(server)
        downloads = Path(tmp) / "downloads"
        downloads.mkdir()
        env = {**os.environ, "PYTHONPATH": str(root), "TMPDIR": tmp, "HF_HUB_OFFLINE": "1"}
        spec = {
            "url": server.url,
            "action": "predict",
            "api_name": "/chat_files",
            "args": ["hi"],
            "downloads": str(downloads),
        }
        report = measure(spec, cwd=Path(tmp), env=env, timeout=timeout)
        report["left_on_disk_mb"] = round(
            sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20, 1
        )
        report["server_sent_mb"] = round(sum(server.sent.values()) / 2**20, 1)
    return report


_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{n}: &{n} [{', '.join([f'*{p}'] * 9)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True)
)
_SCAN_TORN = """
from pathlib import Path
from runner.store import ResultRecord, ResultsStore, scan_results
from runner.store._record import RecordStatus
with ResultsStore.open("run") as store:
    for i in range(10):
        store.append(ResultRecord(key=f"k{i}", row=i, status=RecordStatus.OK, inputs={}))
path = Path("run/results.jsonl")
lines = path.read_bytes().splitlines(keepends=True)
lines[4] = lines[4][:60] + b"\\n"   # record k4 cut in the middle, then the rest
path.write_bytes(b"".join(lines))
print("k4 counts as", scan_results(path).status.get("k4", "missing: its row runs again"))
"""
_ROWS = """
from runner.errors import ManifestError
from runner.inputs._sources import iter_rows
from runner.manifest import load_manifest
try:
    print(len(list(iter_rows(load_manifest("m.yaml")))), "rows")
except ManifestError as exc:
    print(exc)
"""


def _csv(rows: Path, body: bytes | None = None) -> None:
    (rows.parent / "m.yaml").write_text("app: http://127.0.0.1:9\ninputs: {csv: rows.csv}\n")
    if body is not None:
        rows.write_bytes(body)


def _field(rows: Path) -> None:
    _csv(rows)
    with open(rows, "wb") as out:
        out.write(b"text\nshort\n")
        for _ in range(200):
            out.write(b"x" * (1 << 20))
        out.write(b"\n")


FILE_CASES: dict[str, tuple[str, Callable[[Path], list[str]]]] = {}


def _file_case(name: str, title: str) -> Callable[[Callable[[Path], list[str]]], None]:
    def register(prepare: Callable[[Path], list[str]]) -> None:
        FILE_CASES[name] = (title, prepare)

    return register


@_file_case("yaml_tag", "a YAML tag on a list (`!!python/object/apply:os.system [...]`)")
def _yaml_tag(d: Path) -> list[str]:
    (d / "m.yaml").write_text("app: !!python/object/apply:os.system [touch pwned]\n")
    return ["-m", "runner.cli", "validate", "m.yaml"]


@_file_case("laughs", "a YAML billion laughs (9 levels of 9 aliases)")
def _laughs(d: Path) -> list[str]:
    (d / "m.yaml").write_text("app: http://127.0.0.1:9\n" + _LAUGHS)
    return ["-m", "runner.cli", "validate", "m.yaml"]


@_file_case("latin1_3", "a latin-1 CSV read as UTF-8 (the byte on line 3)")
def _latin1_3(d: Path) -> list[str]:
    _csv(d / "rows.csv", "text\na\ncaf\xe9\n".encode("latin-1"))
    return ["-c", _ROWS]


@_file_case("latin1_2002", "a latin-1 CSV read as UTF-8 (the byte on line 2002)")
def _latin1_2002(d: Path) -> list[str]:
    _csv(d / "rows.csv", b"text\n" + b"a\n" * 2000 + "caf\xe9\n".encode("latin-1"))
    return ["-c", _ROWS]


@_file_case("field", "a CSV with one 200 MB field")
def _big_field(d: Path) -> list[str]:
    _field(d / "rows.csv")
    return ["-c", _ROWS]


@_file_case("torn", "a results.jsonl with a record cut in the middle of the file")
def _torn(d: Path) -> list[str]:
    return ["-c", _SCAN_TORN]


@_file_case("outdir", "`output.dir` names a file (`spacerun run`)")
def _outdir(d: Path) -> list[str]:
    (d / "afile").write_text("mine")
    (d / "m.yaml").write_text(
        "app: http://127.0.0.1:9\ninputs: {rows: [{text: a}]}\noutput: {dir: afile}\n"
    )
    return ["-m", "runner.cli", "run", "m.yaml"]


def run_file_case(name: str, root: Path, timeout: float) -> dict[str, Any]:
    _, prepare = FILE_CASES[name]
    with tempfile.TemporaryDirectory() as tmp:
        args = prepare(Path(tmp))
        env = {**os.environ, "PYTHONPATH": str(root), "HF_HUB_OFFLINE": "1"}
        done = run_measured([sys.executable, *args], cwd=Path(tmp), env=env, timeout=timeout)
        said = (done.err + done.out).strip().splitlines()
        traceback = any(line.startswith("Traceback") for line in said)
        last = said[-1] if said else ""
        return {
            "what": f"exit {done.returncode}{', a traceback' if traceback else ''}: {last}",
            "peak_mb": done.peak_mb,
            "seconds": done.seconds,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose code to run")
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--only", choices=sorted({*CASES, *FILE_CASES}), action="append")
    args = parser.parse_args()
    root = args.root.resolve()
    print("| case | what happens | peak RSS MB | seconds | server sent MB | left on disk MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in args.only or [*CASES, *FILE_CASES]:
        if name in FILE_CASES:
            f = run_file_case(name, root, args.timeout)
            what = str(f["what"])[:200].replace("|", "/")
            print(f"| {FILE_CASES[name][0]} | {what} | {f['peak_mb']} | {f['seconds']} | | |")
            continue
        r = run_case(name, root, args.timeout)
        what = f"{r['error']}: {str(r['message'])[:160]}" if r["error"] else "no error"
        what = what.replace("|", "/").replace("\n", " ")
        print(
            f"| {CASES[name][0]} | {what} | {r['peak_mb']} | {r['seconds']} | "
            f"{r['server_sent_mb']} | {r['left_on_disk_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
