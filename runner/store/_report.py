"""`report.html`: what a person looks at after (or during) a run, from the folder alone.

One self-contained file: a jinja2 template with the plotly.js bundle inlined (it opens
offline, no CDN), the charts' data aggregated or sampled and the gallery sampled, so
its size stays bounded however many rows the run has. Reads only; safe beside a run.

    build_report("runs/sweep-demo")      # -> runs/sweep-demo/report.html

While a run goes, it passes `live` (progress, pauses, replicas, cost: what only the
running process knows, as plain data; see `runner.run._live`): the page then says it is
live, shows the newest outputs and reloads itself every `live["refresh"]` seconds. The
final write has no `live`, so a page open in a browser stops reloading at the end.
"""

from __future__ import annotations

import functools
import importlib.resources
import itertools
import json
import os
import time
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import jinja2
import numpy as np

from ._report_data import (
    GROUP_ROWS,
    MATRIX_ROWS,
    ReportData,
    collect,
    distinct_rows,
)
from ._report_figures import latency_figure, latency_table, rate_figure, timeline_figure
from ._report_fleet import fleet_figure
from ._report_values import cell_view, input_media, short_inputs
from ._runfolder import RunDir, RunFolder, safe_dir_name, write_bytes_atomic

__all__ = ["build_report"]

#: Outputs a live report shows as "newest", newest first.
NEWEST = 8


def build_report(
    run_dir: RunDir,
    out: str | os.PathLike[str] | None = None,
    *,
    live: Mapping[str, Any] | None = None,
) -> Path:
    """Write the report of the run in `run_dir` (default `RUN_DIR/report.html`), atomically;
    returns its path. `live`: the state of the run still going (see the module docstring).
    Raises FileNotFoundError if `run_dir` is not a folder."""
    folder = RunFolder.at(run_dir)
    if not folder.root.is_dir():
        raise FileNotFoundError(f"no run folder at {folder.root}")
    context = full_context(folder.root, live)
    target = Path(out) if out is not None else folder.report_path
    render(context, target)
    return target


def full_context(root: Path, live: Mapping[str, Any] | None) -> dict[str, Any]:
    """What the template renders, from one read of the whole folder."""
    started = time.perf_counter()
    data = collect(root, newest=NEWEST if live is not None else 0)
    context = _context(
        data, None if live is None else {**folder_live(data, live.get("total")), **live}
    )
    context["build_seconds"] = round(time.perf_counter() - started, 2)
    return context


def render(context: Mapping[str, Any], target: Path) -> None:
    """Write the page of `context` to `target`, atomically."""
    head, tail = _template().render(**context).split(_PLOTLY_JS, 1)
    write_bytes_atomic(target, (head.encode("utf-8"), *_plotly_js_parts(), tail.encode("utf-8")))


@functools.cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("runner.store", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("report.html.j2")


#: Where plotly.js goes in the rendered template: the 4.8 MB bundle is copied into the
#: file from plotly's package as it is written, never held as one (UCS-2) string.
_PLOTLY_JS = "\x00plotly.js\x00"


def _plotly_js_parts() -> Iterator[bytes]:
    """The plotly.js bundle (UTF-8), in parts of 1 MiB."""
    bundle = importlib.resources.files("plotly") / "package_data" / "plotly.min.js"
    with bundle.open("rb") as handle:
        yield from iter(functools.partial(handle.read, 1 << 20), b"")


def _plotly_js() -> bytes:
    """The plotly.js bundle every report inlines (UTF-8)."""
    return b"".join(_plotly_js_parts())


def _context(data: ReportData, live: Mapping[str, Any] | None = None) -> dict[str, Any]:
    # While live, summary.json is that of an earlier run (if any): the live state stands in.
    summary = {"total": live.get("total")} if live is not None else (data.summary or {})
    timeline, bars = timeline_figure(data)
    latency = latency_table(data)
    figures = {
        "timeline": timeline,
        "rate": rate_figure(data),
        "latency": latency_figure(latency),
    }
    fleet = summary.get("fleet") or []
    end = (summary.get("wall_seconds"), summary.get("cost_usd"))
    if (figure := fleet_figure(fleet, end)) is not None:
        figures["fleet"] = figure
    return {
        "name": summary.get("name") or (data.manifest or {}).get("name") or data.root.name,
        "run_dir": str(data.root),
        "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "overview": _overview(data, summary),
        "summary": summary,
        "live": live,
        "newest": [item(data.shown.get(line), data.root) for line in data.newest],
        "cost": _cost(summary),
        "replicas": summary.get("replicas") or [],
        "fleet": fleet,
        "lanes": data.replicas,
        "bars": bars,
        "lines": len(data.lines.status),
        "latency": latency,
        "failures": _failures(data),
        "gallery": _gallery(data),
        "figures_json": _script_json(figures),
        "plotly_js": _PLOTLY_JS,
    }


def folder_live(data: ReportData, total: int | None = None) -> dict[str, Any]:
    """What the folder alone says of a run still going: the live page's numbers when no
    running process tells better (`spacerun watch` of a folder on a shared disk).
    Throughput is that of the last minute of records (or since the first, when sooner),
    the ETA from it; `total` (else
    that of summary.json) is the manifest's number of submissions."""
    if total is None and data.summary is not None:
        total = data.summary.get("total")
    finished = data.lines.finished[np.isfinite(data.lines.finished)]
    started = data.lines.submitted[np.isfinite(data.lines.submitted)]
    now = time.time()
    # The last minute, or all of it when the run is younger than that.
    window = min(60.0, max(1.0, now - float(started.min()))) if started.size else 60.0
    rate = float(np.count_nonzero(finished > now - window)) / window if finished.size else 0.0
    done = data.keys
    left = total - done if isinstance(total, int) else None
    return {
        "updated": datetime.now().strftime("%H:%M:%S"),
        "refresh": 5,
        "done": done,
        "total": total if isinstance(total, int) else None,
        "percent": 100.0 * done / total if isinstance(total, int) and total else None,
        "ok": data.counts.get("ok", 0),
        "failed": data.counts.get("error", 0) + data.counts.get("timeout", 0),
        "in_flight": None,
        "rate": rate,
        "eta": _clock(left / rate) if left is not None and left > 0 and rate > 0 else None,
        "elapsed": _clock(now - float(started.min())) if started.size else "—",
        "cost": None,
        "cost_projected": None,
        "pauses": [],
        "note": None,
        "failures": [],
        "replicas": [],
    }


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


def _overview(data: ReportData, summary: Mapping[str, Any]) -> dict[str, Any]:
    total = summary.get("total") if isinstance(summary.get("total"), int) else None
    return {
        "counts": data.counts,
        "keys": data.keys,
        "total": total,
        "pending": None if total is None else max(total - data.keys, 0),
        "remaining": summary.get("remaining"),
        "wall": summary.get("wall_seconds"),
        "throughput": summary.get("throughput_per_second"),
        "retries": data.lines.retries,
        "interrupted": summary.get("interrupted"),
        "complete": summary.get("complete"),
        "stopped_by": summary.get("stopped_by"),
        "resume_command": summary.get("resume_command"),
        "torn_bytes": data.torn_bytes,
    }


def _failures(data: ReportData) -> list[dict[str, Any]]:
    return [
        {
            "cause": group.cause,
            "count": group.count,
            "example": group.example,
            "rows": [
                {"key": r.get("key"), "row": r.get("row"), "inputs": short_inputs(r.get("inputs"))}
                for r in group.records
            ],
            "more": max(group.count - GROUP_ROWS, 0),
        }
        for group in data.failures
    ]


def _gallery(data: ReportData) -> dict[str, Any]:
    items = {
        (row, column): item(data.shown.get(line), data.root) for row, column, line in data.gallery
    }
    shown_rows = sorted({row for row, _ in items})
    all_rows = distinct_rows(data)
    base = {"shown": len(items), "of": len(data.cells), "rows_of": all_rows}
    if not data.matrix:
        return {**base, "kind": "list", "entries": [items[k] for k in sorted(items)]}
    names = list(data.matrix)
    combos = _combos(data.matrix)
    return {
        **base,
        "kind": "matrix",
        "params": names,
        "shape": " x ".join(str(n) for n in [all_rows, *(len(v) for v in data.matrix.values())]),
        "header": combos,
        "rows": [
            {
                "row": row,
                "label": _row_label(items, row, len(combos), names),
                "cells": [items.get((row, c)) for c in range(len(combos))],
            }
            for row in shown_rows
        ],
        "max_rows": MATRIX_ROWS,
    }


def _combos(matrix: Mapping[str, list[Any]]) -> list[str]:
    return [
        ", ".join(f"{name}={value}" for name, value in zip(matrix, combo, strict=True))
        for combo in itertools.product(*matrix.values())
    ]


def _row_label(
    items: Mapping[tuple[int, int], dict[str, Any] | None], row: int, n: int, matrix: list[str]
) -> str:
    for column in range(n):
        item = items.get((row, column))
        if item is not None:
            inputs = {k: v for k, v in item["raw_inputs"].items() if k not in matrix}
            return short_inputs(inputs)
    return f"row {row}"


def item(record: dict[str, Any] | None, root: Path) -> dict[str, Any] | None:
    if record is None:
        return None
    key = str(record.get("key"))
    outputs = record.get("outputs") or {}
    return {
        "key": key,
        "row": record.get("row"),
        "status": record.get("status"),
        "error": record.get("error_message"),
        "folder": f"files/{safe_dir_name(key)}/",
        "inputs": short_inputs(record.get("inputs")),
        "raw_inputs": record.get("inputs") or {},
        "media_inputs": input_media(record.get("inputs"), root.resolve()),
        "outputs": [
            {"name": name, "src": None, "full": None, "caption": None, **cell_view(value)}
            for name, value in outputs.items()
        ],
    }


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (no `</script>` can end it early)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _cost(summary: dict[str, Any]) -> str | None:
    """What the run's paid copies cost (`cost_usd` of the summary), as the card shows it."""
    cost = summary.get("cost_usd")
    return f"${cost:.2f}" if isinstance(cost, int | float) else None
