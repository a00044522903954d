"""The typed value readers of the manifest parser: each checks one value and says, at
its key's position, what was expected. Values that came from the environment are never
echoed: they are shown as their `${VAR}` text."""

from __future__ import annotations

import codecs
import difflib
import glob
import re
import shlex
from pathlib import Path
from typing import Any, NoReturn

from ._durations import Rate, parse_duration, parse_rate
from ._yaml import Document, KeyPath, dotted

__all__ = ["Fields", "did_you_mean"]

_SPACE_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b|)", re.IGNORECASE)
_SIZE_UNITS = {
    "": 1,
    "b": 1,
    **{f"{u}b": 1000 ** (i + 1) for i, u in enumerate("kmgt")},
    **{f"{u}ib": 1024 ** (i + 1) for i, u in enumerate("kmgt")},
}


class Fields:
    """Readers over one document; `base` is the folder relative paths are read from."""

    def __init__(self, doc: Document, manifest_path: Path, templates: dict[KeyPath, str]):
        self.doc = doc
        self.file = manifest_path
        self.base = manifest_path.resolve().parent
        self.templates = templates

    def section(self, path: KeyPath, value: Any, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            where = dotted(path) or "the manifest"
            self.fail(
                path,
                f"expected a mapping with keys from {', '.join(allowed)} for "
                f"{where}, got {self.show(path, value)}",
            )
        for key in value:
            if key not in allowed:
                self.fail(
                    (*path, key),
                    f"unknown key {key!r}{did_you_mean(key, allowed)}; "
                    f"expected one of {', '.join(allowed)}",
                )
        return value

    def mapping(self, path: KeyPath, value: Any, shape: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping of {shape}, got {self.show(path, value)}")
        return value

    def text(self, path: KeyPath, value: Any) -> str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str):
            self.fail(path, f"expected text, got {self.show(path, value)}")
        return value

    def integer(self, path: KeyPath, value: Any, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(
                path, f"expected a whole number of at least {minimum}, got {self.show(path, value)}"
            )
        return value

    def number(self, path: KeyPath, value: Any, minimum: float = 0.0) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
            self.fail(
                path, f"expected a number of at least {minimum:g}, got {self.show(path, value)}"
            )
        return float(value)

    def optional_int(self, path: KeyPath, value: Any, minimum: int) -> int | None:
        return None if value is None else self.integer(path, value, minimum)

    def boolean(self, path: KeyPath, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(path, f"expected true or false, got {self.show(path, value)}")
        return value

    def duration(self, path: KeyPath, value: Any) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(path, self.hide(path, value, str(exc)))

    def size(self, path: KeyPath, value: Any) -> int:
        """Bytes: a whole number, or text like `64MB`, `1.5 GiB`, `500kb`."""
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        match = _SIZE.fullmatch(value.strip()) if isinstance(value, str) else None
        if match is None or float(match[1]) <= 0:
            self.fail(
                path,
                f"expected a size like 64MB, 2GiB or 1048576 (bytes), got {self.show(path, value)}",
            )
        return int(float(match[1]) * _SIZE_UNITS[match[2].lower()])

    def money(self, path: KeyPath, value: Any) -> float:
        """An amount in US dollars: `$5`, `5`, `2.50`, `$0.10`."""
        text = value if isinstance(value, str) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            text = str(value)
        match = re.fullmatch(r"\s*\$?\s*(\d+(?:\.\d+)?|\.\d+)\s*(?:USD)?\s*", text or "")
        if match is None or float(match[1]) <= 0:
            shown = self.show(path, value)
            self.fail(path, f"expected an amount in dollars such as $5 or 2.50, got {shown}")
        return float(match[1])

    def choice(self, path: KeyPath, value: Any, options: tuple[str, ...]) -> str:
        if not isinstance(value, str) or value not in options:
            listed = ", ".join(options)
            hint = did_you_mean(value, options) if isinstance(value, str) else ""
            self.fail(path, f"expected one of {listed}, got {self.show(path, value)}{hint}")
        return value

    def rate(self, path: KeyPath, value: Any) -> Rate:
        try:
            return parse_rate(value)
        except ValueError as exc:
            self.fail(path, self.hide(path, value, str(exc)))

    def url(self, path: KeyPath, value: Any) -> str:
        text = self.text(path, value).strip()
        if not re.match(r"https?://[^/\s]+", text):
            self.fail(
                path,
                f"expected a URL starting with http:// or https://, got {self.show(path, value)}",
            )
        return text.rstrip("/")

    def space(self, path: KeyPath, value: Any) -> str:
        text = self.text(path, value).strip()
        if not _SPACE_ID.fullmatch(text):
            self.fail(
                path,
                f"expected a Space id like owner/name (or a URL starting with "
                f"http:// or https://), got {self.show(path, value)}",
            )
        return text

    def existing_file(self, path: KeyPath, value: Any, what: str) -> Path:
        text = self.text(path, value)
        file = (self.base / Path(text).expanduser()).resolve()
        if not file.is_file():
            self.fail(
                path,
                f"expected {what}, but {text!r} does not exist (looked for {file}); fix the "
                "path: a relative one is read from the manifest's folder",
            )
        return file

    def pattern(self, path: KeyPath, value: Any) -> str:
        text = self.text(path, value)
        full = str(self.base / Path(text).expanduser())
        if next(glob.iglob(full, recursive=True), None) is None:
            self.fail(
                path,
                f"expected a glob that matches files, but {text!r} matches none "
                f"(looked in {self.base})",
            )
        return text

    def delimiter(self, path: KeyPath, value: Any) -> str:
        if not isinstance(value, str) or len(value) != 1:
            self.fail(
                path,
                f"expected one character such as ',' ';' or '\\t', got {self.show(path, value)}",
            )
        return value

    def encoding(self, path: KeyPath, value: Any) -> str:
        text = self.text(path, value)
        try:
            codecs.lookup(text)
        except LookupError:
            self.fail(path, f"expected a text encoding such as utf-8 or latin-1, got {text!r}")
        return text

    def env(self, path: KeyPath, value: Any) -> dict[str, str]:
        table = self.mapping(path, value, "NAME: value")
        return {
            str(k): self.text((*path, k), v) if not isinstance(v, bool) else str(v).lower()
            for k, v in table.items()
        }

    def args(self, path: KeyPath, value: Any) -> tuple[str, ...]:
        if isinstance(value, str):
            return tuple(shlex.split(value))
        if not isinstance(value, list):
            self.fail(path, f"expected a list of arguments, got {self.show(path, value)}")
        return tuple(self.text((*path, i), v) for i, v in enumerate(value))

    # -- messages ----------------------------------------------------------------------------

    def show(self, path: KeyPath, value: Any) -> str:
        """How to quote a value in a message; never the value of an environment variable."""
        template = self.templates.get(path)
        if template is not None:
            return f"{template!r} (from the environment)"
        if isinstance(value, dict):
            return "a mapping"
        if isinstance(value, list):
            return "a list"
        if value is None:
            return "nothing"
        return repr(value)

    def hide(self, path: KeyPath, value: Any, message: str) -> str:
        template = self.templates.get(path)
        return message if template is None else message.replace(repr(value), self.show(path, value))

    def move_template(self, old: KeyPath, new: KeyPath) -> None:
        if old in self.templates:
            self.templates[new] = self.templates.pop(old)

    def fail(self, path: KeyPath, message: str) -> NoReturn:
        raise self.doc.error(path, message)


def did_you_mean(word: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
