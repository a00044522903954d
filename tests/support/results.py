"""Reading a run folder's results while another process writes them (a `spacerun`
subprocess that a test kills and resumes)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any


def records(run_dir: Path) -> list[dict[str, Any]]:
    """Every complete line of results.jsonl, parsed (a torn tail, from a kill, is left
    out)."""
    try:
        data = (run_dir / "results.jsonl").read_bytes()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in data[: data.rfind(b"\n") + 1].splitlines()]


def ok_inputs(run_dir: Path) -> Counter[str]:
    """How many times each row (its input `x`) is recorded ok."""
    return Counter(r["inputs"]["x"] for r in records(run_dir) if r["status"] == "ok")


def wait_until(
    condition: Callable[[], bool], what: str = "", timeout: float = 90, poll: float = 0.002
) -> None:
    """Wait for `condition`: another process writes the results file, so reading it is
    the only way to know."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(poll)
