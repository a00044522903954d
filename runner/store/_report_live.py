"""The report of a run still going, written over and over: full writes now and then,
light ones in between.

A full write reads the whole folder (`build_report`'s pass over `results.jsonl`), which
takes seconds at a million records. A light write keeps the charts, tables and gallery
of the last full write, and renders afresh only what moves: the live numbers (given by
the running process) and the newest outputs, parsed from the last lines of the file.
Its cost does not grow with the run (`bench/bench_live.py`).

    page = LivePage(run_dir)
    page.write(live, full=True)     # reads everything
    page.write(live, full=False)    # the live numbers and the newest outputs only
    page.write_full(page.read(live))  # the same, in two steps
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ._record import RecordStatus
from ._report import NEWEST, full_context, item, render
from ._runfolder import RunDir, RunFolder

__all__ = ["LivePage", "newest_records"]

#: The newest outputs are looked for in this many bytes at the end of results.jsonl.
_TAIL = 1 << 20


class LivePage:
    """`report.html` of the run in `run_dir`, while it goes."""

    def __init__(self, run_dir: RunDir) -> None:
        self.folder = RunFolder.at(run_dir)
        self.target = self.folder.report_path
        self._base: dict[str, Any] | None = None

    @property
    def has_base(self) -> bool:
        """Whether a full write was made (light ones draw on it)."""
        return self._base is not None

    def write(self, live: Mapping[str, Any], *, full: bool) -> bool:
        """Write the page with `live`; a full write when asked (or none was made yet).
        Returns whether the write was full."""
        if full or self._base is None:
            self.write_full(self.read(live))
            return True
        self.write_light(live)
        return False

    def read(self, live: Mapping[str, Any]) -> dict[str, Any]:
        """What a full write renders: one read of the whole folder."""
        return full_context(self.folder.root, live)

    def write_full(self, context: dict[str, Any]) -> None:
        """Write the page of `read(live)` (read first, so that the run can read in a
        thread and write when it likes)."""
        context["charts_as_of"] = context["generated"]
        self._base = context
        render(context, self.target)

    def write_light(self, live: Mapping[str, Any]) -> None:
        """The last full write's page with `live` and the newest outputs (no full write
        yet: nothing is written)."""
        base = self._base
        if base is None:
            return
        newest = [
            item(record, self.folder.root)
            for record in newest_records(self.folder.results_path, NEWEST)
        ]
        context = {
            **base,
            "live": {**base["live"], **live},
            "newest": newest or base["newest"],
            "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "light": True,  # the sections below the live one are the last full write's
        }
        render(context, self.target)


def newest_records(path: Path, count: int) -> list[dict[str, Any]]:
    """The last `count` records of `path` that count (cancelled ones aside), newest
    first, from its last `_TAIL` bytes (fewer when its lines are longer than that)."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL))
            tail = handle.read(_TAIL)
    except FileNotFoundError:
        return []
    lines = tail.split(b"\n")
    if size > _TAIL:
        lines = lines[1:]  # the first may be cut
    found: list[dict[str, Any]] = []
    for line in reversed(lines):
        if len(found) >= count:
            break
        try:
            record = json.loads(line)
        except ValueError:
            continue  # empty, or the torn end of a line being written
        if isinstance(record, dict) and record.get("status") != RecordStatus.CANCELLED.value:
            found.append(record)
    return found
