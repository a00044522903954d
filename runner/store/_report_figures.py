"""The report's charts as plotly.js figure specs (plain data: traces and a layout).

Built from the numbers `_report_data` keeps, aggregated here (bins, quartiles) or
sampled (timeline bars), so a chart's size does not grow with the run's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._report_data import Lines, ReportData

__all__ = ["BARS", "latency_figure", "latency_table", "rate_figure", "timeline_figure"]

#: Timeline bars at most: every failure up to a third of them, the rest spread evenly.
BARS = 3000
_BINS = 80
_OK, _ERROR, _CANCELLED, _TIMEOUT = 0, 1, 2, 3
_COLOURS = {"waiting": "#cfd6e0", "queued": "#f2c14e", "running": "#3b7dd8", "failed": "#d64545"}
Figure = dict[str, Any]


def _arrays(lines: Lines) -> dict[str, np.ndarray[Any, Any]]:
    return {
        "submitted": lines.submitted,
        "finished": lines.finished,
        "queue_time": lines.queue_time,
        "run_time": lines.run_time,
        "replica": lines.replica,
        "status": lines.status,
    }


def _origin(a: dict[str, np.ndarray[Any, Any]]) -> float | None:
    for name in ("submitted", "finished"):
        first = float(np.fmin.reduce(a[name])) if a[name].size else float("nan")
        if first == first:
            return first
    return None


def _sample(a: dict[str, np.ndarray[Any, Any]]) -> np.ndarray[Any, Any]:
    """Line indices drawn on the timeline."""
    drawable = (a["replica"] >= 0) & ~np.isnan(a["finished"])
    if np.count_nonzero(drawable) <= BARS:
        return np.flatnonzero(drawable)
    failed = np.flatnonzero(drawable & np.isin(a["status"], (_ERROR, _TIMEOUT)))[: BARS // 3]
    drawable[failed] = False
    rest = np.flatnonzero(drawable)
    spread = np.linspace(0, rest.size - 1, BARS - failed.size).astype(np.int64)
    return np.union1d(failed, rest[spread])


def timeline_figure(data: ReportData) -> tuple[Figure, int]:
    """One lane per replica, a bar per job from its submission to its finish (waiting,
    queued and running parts), failures in red and marked; and how many bars it drew."""
    a = _arrays(data.lines)
    t0 = _origin(a)
    index = _sample(a)
    names = np.array(data.replicas or [""], dtype=object)
    lanes = names[a["replica"][index]].tolist() if index.size else []
    if t0 is None:
        return _empty("no finished jobs yet"), 0
    # In epoch seconds first, as the submission of a record without one was computed.
    fin = a["finished"][index]
    sta = fin - a["run_time"][index]
    que = np.where(np.isnan(a["queue_time"][index]), sta, sta - a["queue_time"][index])
    sub, que, sta, fin = (v - t0 for v in (a["submitted"][index], que, sta, fin))
    sta = np.where(np.isnan(sta), sub, sta)
    que = np.where(np.isnan(que), sta, que)
    sub = np.where(np.isnan(sub), que, sub)
    failed = np.isin(a["status"][index], (_ERROR, _TIMEOUT))
    traces = [
        _bars("waiting (sent, retrying)", lanes, sub, que, _COLOURS["waiting"]),
        _bars("queued on the app", lanes, que, sta, _COLOURS["queued"]),
        _bars("running", lanes, sta, fin, _COLOURS["running"], keep=~failed),
        _bars("failed", lanes, sta, fin, _COLOURS["failed"], keep=failed),
        {
            "type": "scatter",
            "mode": "markers",
            "name": "failure",
            "x": _round(fin[failed]),
            "y": [lane for lane, f in zip(lanes, failed, strict=True) if f],
            "marker": {"symbol": "x", "color": _COLOURS["failed"], "size": 9},
        },
    ]
    layout = {
        "barmode": "overlay",
        "height": 140 + 46 * len(data.replicas),
        "xaxis": {"title": {"text": "seconds since the first job was sent"}},
        "yaxis": {"type": "category", "categoryorder": "category descending", "automargin": True},
        "legend": {"orientation": "h", "x": 0, "y": 1.0, "yanchor": "bottom"},
        "margin": {"t": 30, "r": 10},
    }
    return {"data": traces, "layout": layout}, int(index.size)


def _bars(
    name: str,
    lanes: list[str],
    start: np.ndarray[Any, Any],
    end: np.ndarray[Any, Any],
    colour: str,
    keep: np.ndarray[Any, Any] | None = None,
) -> Figure:
    mask = end > start
    if keep is not None:
        mask &= keep
    return {
        "type": "bar",
        "orientation": "h",
        "name": name,
        "y": [lane for lane, m in zip(lanes, mask, strict=True) if m],
        "base": _round(start[mask]),
        "x": _round(end[mask] - start[mask]),
        "marker": {"color": colour},
        "opacity": 0.75,
        "hoverinfo": "name+x",
    }


def rate_figure(data: ReportData) -> Figure:
    """Jobs finished per second (ok and failed) and jobs in flight, over time."""
    a = _arrays(data.lines)
    t0 = _origin(a)
    fin = a["finished"]
    if t0 is None or np.isnan(fin).all():
        return _empty("no finished jobs yet")
    end = float(np.fmax.reduce(fin)) - t0
    # Bins of at least a few jobs each, so that a short run does not draw a comb.
    bins = int(np.clip(np.count_nonzero(~np.isnan(fin)) // 4, 4, _BINS))
    edges = np.linspace(0.0, max(end, 1e-3), bins + 1)
    width = edges[1] - edges[0]
    centres = (edges[:-1] + edges[1:]) / 2
    # Counted against edges in epoch seconds: no shifted copy of a column per count.
    ok = np.histogram(fin[a["status"] == _OK], bins=edges + t0)[0] / width
    bad = np.histogram(fin[np.isin(a["status"], (_ERROR, _TIMEOUT))], bins=edges + t0)[0] / width
    sent = a["submitted"]
    in_flight = _at_or_before(sent, centres + t0) - _at_or_before(
        np.where(np.isnan(sent), np.nan, fin), centres + t0
    )
    x = _round(centres)
    traces = [
        _line("ok / s", x, _round(ok), "#2e9e5b"),
        _line("failed / s", x, _round(bad), "#d64545"),
        {**_line("in flight", x, in_flight.tolist(), "#3b7dd8", shape="hv"), "yaxis": "y2"},
    ]
    return {"data": traces, "layout": _rate_layout()}


def _line(name: str, x: Any, y: Any, color: str, **line: Any) -> dict[str, Any]:
    return {"type": "scatter", "name": name, "x": x, "y": y, "line": {**line, "color": color}}


def _rate_layout() -> dict[str, Any]:
    """Rates above, jobs in flight below, on one time axis."""
    return {
        "height": 320,
        "xaxis": {"title": {"text": "seconds since the first job was sent"}, "anchor": "y2"},
        "yaxis": {"title": {"text": "jobs / s"}, "domain": [0.55, 1.0], "rangemode": "tozero"},
        "yaxis2": {
            "title": {"text": "in flight"},
            "domain": [0.0, 0.42],
            "rangemode": "tozero",
            "anchor": "x",
        },
        "legend": {"orientation": "h", "y": -0.3},
        "margin": {"t": 10, "r": 10},
    }


def _at_or_before(
    values: np.ndarray[Any, Any], points: np.ndarray[Any, Any]
) -> np.ndarray[Any, Any]:
    """How many of `values` (NaN left out) are at most each of the increasing `points`:
    a histogram, which counts a block at a time rather than sorting a copy."""
    edges = np.concatenate(([-np.inf], np.nextafter(points, np.inf)))
    return np.cumsum(np.histogram(values[~np.isnan(values)], bins=edges)[0])


def _stats(values: np.ndarray[Any, Any]) -> dict[str, float] | None:
    values = values[~np.isnan(values)]
    if values.size == 0:
        return None
    q = np.percentile(values, [0, 25, 50, 75, 95, 100])
    return {
        "min": float(q[0]), "q1": float(q[1]), "median": float(q[2]), "q3": float(q[3]),
        "p95": float(q[4]), "max": float(q[5]), "mean": float(values.mean()), "n": int(values.size),
    }  # fmt: skip


def latency_table(data: ReportData) -> list[dict[str, Any]]:
    """Per replica: quartiles of queue and run time (seconds), from every line."""
    a = _arrays(data.lines)
    rows = []
    for index, name in enumerate(data.replicas):
        mine = a["replica"] == index
        rows.append(
            {
                "replica": name,
                "queue": _stats(a["queue_time"][mine]),
                "run": _stats(a["run_time"][mine]),
            }
        )
    return rows


def latency_figure(table: list[dict[str, Any]]) -> Figure:
    """Box plots (from the quartiles) of queue time and run time, one box per replica."""
    traces = []
    for kind, axis, colour in (("queue", "", "#f2c14e"), ("run", "2", "#3b7dd8")):
        rows = [r for r in table if r[kind] is not None]
        if not rows:
            continue
        traces.append(
            {
                "type": "box",
                "name": f"{kind} time",
                "x": [r["replica"] for r in rows],
                "q1": [r[kind]["q1"] for r in rows],
                "median": [r[kind]["median"] for r in rows],
                "q3": [r[kind]["q3"] for r in rows],
                "lowerfence": [r[kind]["min"] for r in rows],
                "upperfence": [r[kind]["max"] for r in rows],
                "mean": [r[kind]["mean"] for r in rows],
                "xaxis": f"x{axis}",
                "yaxis": f"y{axis}",
                "marker": {"color": colour},
            }
        )
    if not traces:
        return _empty("no timings recorded")
    layout = {
        "height": 320,
        "xaxis": {"domain": [0.0, 0.46], "title": {"text": "queue time per replica"}},
        "xaxis2": {"domain": [0.54, 1.0], "title": {"text": "run time per replica"}},
        "yaxis": {"title": {"text": "seconds"}, "rangemode": "tozero"},
        "yaxis2": {"anchor": "x2", "rangemode": "tozero"},
        "showlegend": False,
        "margin": {"t": 10, "r": 10},
    }
    return {"data": traces, "layout": layout}


def _empty(text: str) -> Figure:
    return {
        "data": [],
        "layout": {
            "height": 120,
            "xaxis": {"visible": False},
            "yaxis": {"visible": False},
            "annotations": [{"text": text, "showarrow": False, "font": {"size": 14}}],
        },
    }


def _round(values: np.ndarray[Any, Any]) -> list[float]:
    return [round(float(v), 3) for v in values]
