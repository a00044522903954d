"""Durations (`90s`, `10m`, `1h30m`, `250ms`) and rates (`10/s`, `600/min`, `1/h`).

Parsing raises `ValueError` with a message that says what is expected; the manifest
loader turns it into a `ManifestError` naming the file, line and key. A bare number
is seconds for a duration and "per second" for a rate.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = ["Rate", "format_duration", "parse_duration", "parse_rate"]

_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_PER = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)")

DURATION_EXPECTED = "expected a duration like 90s, 10m, 1h30m or 250ms"
RATE_EXPECTED = "expected a rate like 10/s, 600/min or 1/h"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """`count` submissions per `per` seconds."""

    count: float
    per: float = 1.0

    @property
    def per_second(self) -> float:
        return self.count / self.per

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}.get(self.per)
        count = _number(self.count)
        return f"{count}/{unit}" if unit else f"{count}/{format_duration(self.per)}"


def parse_duration(value: object) -> float:
    """Seconds in `value`: a number (seconds) or text such as `1h30m`, `90s`, `250ms`."""
    if isinstance(value, bool):
        raise ValueError(f"{DURATION_EXPECTED}, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration_text(value)
    else:
        raise ValueError(f"{DURATION_EXPECTED}, got {value!r}")
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"{DURATION_EXPECTED} (more than zero), got {value!r}")
    return seconds


def _parse_duration_text(text: str) -> float:
    compact = text.strip().lower().replace(" ", "")
    try:
        return float(compact)
    except ValueError:
        pass
    pos, total = 0, 0.0
    while pos < len(compact):
        match = _PART.match(compact, pos)
        if match is None:
            raise ValueError(f"{DURATION_EXPECTED}, got {text!r}")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not compact:
        raise ValueError(f"{DURATION_EXPECTED}, got {text!r}")
    return total


def parse_rate(value: object) -> Rate:
    """A `Rate` from `10/s`, `600/min`, `1/h`, `5/10s`, or a number (per second)."""
    if isinstance(value, bool):
        raise ValueError(f"{RATE_EXPECTED}, got {value!r}")
    if isinstance(value, (int, float)):
        rate = Rate(count=float(value))
    elif isinstance(value, str):
        rate = _parse_rate_text(value)
    else:
        raise ValueError(f"{RATE_EXPECTED}, got {value!r}")
    if not math.isfinite(rate.per_second) or rate.per_second <= 0:
        raise ValueError(f"{RATE_EXPECTED} (more than zero), got {value!r}")
    return rate


def _parse_rate_text(text: str) -> Rate:
    compact = text.strip().lower()
    try:
        return Rate(count=float(compact))
    except ValueError:
        pass
    match = _RATE.fullmatch(compact)
    if match is None:
        raise ValueError(f"{RATE_EXPECTED}, got {text!r}")
    count, multiple, unit = match.groups()
    if unit in _PER:
        per = _PER[unit]
    elif unit in _UNIT_SECONDS:
        per = _UNIT_SECONDS[unit]
    else:
        raise ValueError(f"{RATE_EXPECTED}, got {text!r}")
    return Rate(count=float(count), per=per * float(multiple or 1))


def format_duration(seconds: float) -> str:
    """The shortest text `parse_duration` reads back: 5400.0 -> `1h30m`, 0.25 -> `250ms`."""
    if seconds < 1:
        return f"{_number(round(seconds * 1000, 3))}ms"
    parts = []
    rest = seconds
    for unit, size in (("h", 3600), ("m", 60)):
        whole = int(rest // size)
        if whole:
            parts.append(f"{whole}{unit}")
            rest -= whole * size
    if rest or not parts:
        parts.append(f"{_number(round(rest, 3))}s")
    return "".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
