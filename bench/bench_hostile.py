"""Hostile servers: what the client does, its peak memory and time, case by case.

    python bench/bench_hostile.py [--root OTHER_CHECKOUT] [--timeout 150] [--only NAME]

Each case of the hostile-input issue runs against `tests/support/hostile.py` with the
client's default limits, in a fresh subprocess (`tests/support/hostile_child.py`, address
space capped at 2 GiB) whose peak RSS the kernel reports. `--root` runs the `jobs` of
another checkout (e.g. a `git worktree` of an older commit) to compare; a case still
running after `--timeout` seconds is killed and reported so. Prints a Markdown table.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose jobs to run")
    parser.add_argument("--timeout", type=float, default=150.0)
    parser.add_argument("--only", choices=sorted(CASES), action="append")
    args = parser.parse_args()
    print("| case | what happens | peak RSS MB | seconds | server sent MB | left on disk MB |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in args.only or CASES:
        r = run_case(name, args.root.resolve(), args.timeout)
        what = f"{r['error']}: {str(r['message'])[:160]}" if r["error"] else "no error"
        what = what.replace("|", "/").replace("\n", " ")
        print(
            f"| {CASES[name][0]} | {what} | {r['peak_mb']} | {r['seconds']} | "
            f"{r['server_sent_mb']} | {r['left_on_disk_mb']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
