"""Map templates: "{column}" keeps the cell's type, "text {a} {b}" builds text;
"{{" and "}}" stand for literal braces. "{a.b}" reads field `b` of a struct column `a`
(`{translation.fr}`), or item `b` of a list when `b` is a number; a dataset's Audio,
Image or Video cell is already its file, so `{audio.path}` is that file too (the field
`datasets` users write)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["cell", "compile_template", "render_template", "template_reads"]

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


def cell(row: Mapping[str, Any], column: str) -> Any:
    """The value `column` names in `row`: a column, or a dotted path into one."""
    if column in row or "." not in column:
        return row[column]
    head, *fields = column.split(".")
    value = row[head]
    for field in fields:
        if isinstance(value, Mapping) and field in value:
            value = value[field]
        elif isinstance(value, list) and field.isdigit() and int(field) < len(value):
            value = value[int(field)]
        elif isinstance(value, str) and field == "path":
            continue  # a media cell, already made a file
        else:
            raise KeyError(column)
    return value


def render_template(template: Any, row: Mapping[str, Any]) -> Any:
    if isinstance(template, _Whole):
        return cell(row, template.column)
    if isinstance(template, _Text):
        out = []
        for literal, column in template.parts:
            out.append(literal)
            if column is not None:
                value = cell(row, column)
                out.append("" if value is None else str(value))
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
