"""The report's elastic fleet: its size and its cost over time, from the decisions the
run kept in `summary.json` (`fleet`: one row per copy started, paused or held)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["fleet_figure"]

Figure = dict[str, Any]


def fleet_figure(
    decisions: Sequence[Mapping[str, Any]], end: tuple[Any, Any] = (None, None)
) -> Figure | None:
    """Copies running (a step line) and dollars spent, against seconds since the start,
    with the end of the run (every copy paused, the final cost) when `end` (wall seconds,
    cost) is known; None without decisions (no elastic copies)."""
    if not decisions:
        return None
    at = [d["elapsed"] for d in decisions]
    copies = [d["copies"] for d in decisions]
    spent = [d["spent_usd"] for d in decisions]
    text = [f"{d['action']} {d['copy']}: {d['why']}" for d in decisions]
    wall, cost = end
    if isinstance(wall, int | float) and isinstance(cost, int | float):
        at, copies, spent = [*at, wall], [*copies, 0], [*spent, cost]
        text.append("the end: every copy paused")
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "line": {"shape": "hv", "color": "#3b7dd8"},
            "name": "copies running",
            "x": at,
            "y": copies,
            "text": text,
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "line": {"color": "#d8593b"},
            "name": "spent ($)",
            "x": at,
            "y": spent,
            "yaxis": "y2",
        },
    ]
    layout = {
        "height": 280,
        "xaxis": {"title": {"text": "seconds since the start"}, "rangemode": "tozero"},
        "yaxis": {"title": {"text": "copies"}, "rangemode": "tozero", "dtick": 1},
        "yaxis2": {"title": {"text": "dollars"}, "overlaying": "y", "side": "right"},
        "margin": {"t": 10, "r": 60},
    }
    return {"data": traces, "layout": layout}
