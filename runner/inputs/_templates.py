"""Map templates: "{column}" keeps the cell's type, "text {a} {b}" builds text;
"{{" and "}}" stand for literal braces."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["compile_template", "render_template", "template_reads"]

_PLACEHOLDER = re.compile(r"\{\{|\}\}|\{([^{}]+)\}")


@dataclass(frozen=True, slots=True)
class _Whole:
    column: str


@dataclass(frozen=True, slots=True)
class _Text:
    parts: tuple[tuple[str, str | None], ...]  # (literal, column or None)


def compile_template(value: Any) -> Any:
    if isinstance(value, list):
        return [compile_template(v) for v in value]
    if not isinstance(value, str) or ("{" not in value and "}" not in value):
        return value
    whole = _PLACEHOLDER.fullmatch(value)
    if whole is not None and whole.group(1) is not None:
        return _Whole(whole.group(1).strip())
    parts: list[tuple[str, str | None]] = []
    literal, pos = "", 0
    for match in _PLACEHOLDER.finditer(value):
        literal += value[pos : match.start()]
        pos = match.end()
        if match.group(1) is None:
            literal += match.group(0)[0]  # {{ -> {, }} -> }
        else:
            parts.append((literal, match.group(1).strip()))
            literal = ""
    parts.append((literal + value[pos:], None))
    if len(parts) == 1:
        return parts[0][0]
    return _Text(tuple(parts))


def render_template(template: Any, row: Mapping[str, Any]) -> Any:
    if isinstance(template, _Whole):
        return row[template.column]
    if isinstance(template, _Text):
        out = []
        for literal, column in template.parts:
            out.append(literal)
            if column is not None:
                cell = row[column]
                out.append("" if cell is None else str(cell))
        return "".join(out)
    if isinstance(template, list):
        return [render_template(t, row) for t in template]
    return template


def template_reads(template: Any, columns: Iterable[str]) -> bool:
    wanted = set(columns)
    if isinstance(template, _Whole):
        return template.column in wanted
    if isinstance(template, _Text):
        return any(column in wanted for _, column in template.parts)
    if isinstance(template, list):
        return any(template_reads(t, wanted) for t in template)
    return False
