"""How one output value shows in the report's gallery: an image, a player, a link, or
text shortened with the full value on demand (itself capped, to bound the file)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["cell_view", "input_media", "short_inputs"]

SHORT = 90
#: Longest full value kept in the file; the rest is in results.jsonl and the files.
FULL = 2000
_KINDS = {
    "image": {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".svg", ".avif"},
    "audio": {".wav", ".mp3", ".ogg", ".flac", ".m4a", ".aac", ".opus"},
    "video": {".mp4", ".webm", ".mov", ".ogv", ".mkv"},
}


def cell_view(value: Any) -> dict[str, Any]:
    """`{"kind": image|audio|video|file|text|json, "src"?, "short", "full"?}` for `value`.

    A file output is a path relative to the run folder (`files/<key>/...`); a value that
    holds files (a gallery, a JSON with paths) shows its first one and its text.
    """
    if isinstance(value, str) and _is_file(value):
        return {"kind": _file_kind(value), "src": value, "short": PurePosixPath(value).name}
    if isinstance(value, (dict, list)):
        text = json.dumps(value, ensure_ascii=False)
        first = next(_files_in(value), None)
        view = _text_view("json", text)
        if first is not None:
            view.update({"kind": _file_kind(first), "src": first, "caption": view["short"]})
        return view
    return _text_view("text", "" if value is None else str(value))


def input_media(inputs: Any, root: Path) -> list[dict[str, Any]]:
    """The inputs that are local media files (a WAV sent for transcription, say), linked
    by their path relative to the run folder; shown beside the outputs they gave."""
    found = []
    for name, value in (inputs or {}).items() if isinstance(inputs, dict) else ():
        if not (isinstance(value, str) and os.path.isabs(value)):
            continue
        kind = _file_kind(value)
        if kind in _KINDS:
            src = Path(os.path.relpath(value, root)).as_posix()
            found.append({"name": name, "kind": kind, "src": src, "short": Path(value).name})
    return found


def short_inputs(inputs: Any) -> str:
    """`name: value; ...` shortened, for a row's label or a table cell."""
    if not isinstance(inputs, dict):
        return ""
    parts = []
    for name, value in inputs.items():
        shown = PurePosixPath(value).name if isinstance(value, str) and "/" in value else value
        parts.append(f"{name}: {_shorten(str(shown), 60)}")
    return _shorten("; ".join(parts), SHORT * 2)


def _text_view(kind: str, text: str) -> dict[str, Any]:
    view: dict[str, Any] = {"kind": kind, "short": _shorten(text, SHORT)}
    if len(text) > SHORT:
        view["full"] = _shorten(text, FULL)
    return view


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_file(value: str) -> bool:
    return value.startswith("files/") and "\n" not in value and ".." not in value.split("/")


def _file_kind(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    for kind, suffixes in _KINDS.items():
        if suffix in suffixes:
            return kind
    return "file"


def _files_in(value: Any) -> Iterator[str]:
    if isinstance(value, str) and _is_file(value):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _files_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _files_in(item)
