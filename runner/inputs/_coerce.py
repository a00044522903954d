"""One coercer per endpoint parameter: a raw cell or YAML value -> the value to send.

Coercers are built once per parameter from its JSON schema (`json_type`), its Python
type, its choices and its file kind, and then called once per row, so they are small
closures. They raise `Invalid` with a summary shared by every row with the same mistake
("num1: expected a number (Number)") and a per-row detail ("got 'abc'"). Text from CSV
becomes numbers, booleans, lists or objects where the parameter expects them.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._media import MediaFile
from ._problems import Invalid, ProblemKind

if TYPE_CHECKING:
    from jobs import Parameter

__all__ = ["Coercer", "coercer_for", "is_url"]

Coercer = Callable[[Any], Any]

_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}
_WRONG = ProblemKind.WRONG_TYPE


def is_url(value: str) -> bool:
    return value.startswith(("http://", "https://"))


def coercer_for(param: Parameter, *, base_dir: str, max_file_size: int | None) -> Coercer:
    """The coercer for `param`; relative file paths are read from `base_dir`."""
    if param.file_kind is not None:
        single = _file(param, base_dir, max_file_size)
        return single if param.file_kind == "single" else _file_list(param, single)
    if param.choices is not None:
        choice = _choice(param)
        return _multi_choice(param, choice) if param.multiselect else choice
    kind = _json_kind(param.json_type) or _PY_KINDS.get(param.python_type.replace(" ", ""))
    factory = _FACTORIES.get(kind or "", _anything)
    return factory(param)


def _label(param: Parameter) -> str:
    return f"{param.name} ({param.component})" if param.component else param.name


def _json_kind(schema: Mapping[str, Any]) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind is None and "anyOf" in schema:
        options = [o for o in schema["anyOf"] if isinstance(o, Mapping) and o.get("type") != "null"]
        return _json_kind(options[0]) if len(options) == 1 else None
    return kind if isinstance(kind, str) else None


_PY_KINDS = {"float": "number", "int": "integer", "bool": "boolean", "str": "string"}


def _number(param: Parameter) -> Coercer:
    summary = f"{_label(param)}: expected a number"

    def coerce(value: Any) -> Any:
        if isinstance(value, bool):
            raise Invalid(_WRONG, summary, f"got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            raise Invalid(_WRONG, summary, f"got {value!r}")
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                pass
            try:
                number = float(text)
            except ValueError:
                raise Invalid(_WRONG, summary, f"got {value!r}") from None
            if math.isfinite(number):
                return number
        raise Invalid(_WRONG, summary, f"got {value!r}")

    return coerce


def _integer(param: Parameter) -> Coercer:
    summary = f"{_label(param)}: expected a whole number"
    as_number = _number(param)

    def coerce(value: Any) -> int:
        try:
            number = as_number(value)
        except Invalid:
            raise Invalid(_WRONG, summary, f"got {value!r}") from None
        if isinstance(number, float):
            if not number.is_integer():
                raise Invalid(_WRONG, summary, f"got {value!r}")
            return int(number)
        return int(number)

    return coerce


def _boolean(param: Parameter) -> Coercer:
    summary = f"{_label(param)}: expected true or false"

    def coerce(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
        raise Invalid(_WRONG, summary, f"got {value!r}")

    return coerce


def _string(param: Parameter) -> Coercer:
    summary = f"{_label(param)}: expected text"

    def coerce(value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise Invalid(_WRONG, summary, f"got {_shape(value)} (quote it to send it as text)")

    return coerce


def _json_container(param: Parameter, expected: type, what: str) -> Coercer:
    summary = f"{_label(param)}: expected {what}"

    def coerce(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise Invalid(_WRONG, summary, f"got {value!r}, which is not JSON") from None
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, expected):
            raise Invalid(_WRONG, summary, f"got {_shape(value)}")
        return value

    return coerce


def _array(param: Parameter) -> Coercer:
    return _json_container(param, list, "a list (in a CSV cell, a JSON array like [1, 2])")


def _object(param: Parameter) -> Coercer:
    return _json_container(param, dict, 'a mapping (in a CSV cell, a JSON object like {"a": 1})')


def _anything(param: Parameter) -> Coercer:
    def coerce(value: Any) -> Any:
        return value

    return coerce


_FACTORIES: dict[str, Callable[[Parameter], Coercer]] = {
    "number": _number,
    "integer": _integer,
    "boolean": _boolean,
    "string": _string,
    "array": _array,
    "object": _object,
}


def _choice(param: Parameter) -> Coercer:
    choices = tuple(param.choices or ())
    lookup: dict[Any, Any] = {}
    for choice in choices:
        lookup.setdefault(str(choice), choice)
    for choice in choices:
        if _hashable(choice):
            lookup.setdefault(choice, choice)
    listing = ", ".join(repr(c) for c in choices)
    summary = f"{_label(param)}: expected one of {listing}"
    names = [str(c) for c in choices]

    def coerce(value: Any) -> Any:
        if _hashable(value):
            found = lookup.get(value, lookup.get(str(value), _NOTHING))
            if found is not _NOTHING:
                return found
        close = difflib.get_close_matches(str(value), names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise Invalid(ProblemKind.NOT_A_CHOICE, summary, f"got {value!r}{hint}")

    return coerce


_NOTHING = object()


def _multi_choice(param: Parameter, choice: Coercer) -> Coercer:
    def coerce(value: Any) -> list[Any]:
        return [choice(item) for item in _as_list(value, choice)]

    return coerce


def _as_list(value: Any, single: Coercer) -> Sequence[Any]:
    """A list from a list, a JSON array in text, one value, or comma-separated values."""
    if isinstance(value, (list, tuple)):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        try:
            single(value)
            return [value]
        except Invalid:
            if "," in text:
                return [part.strip() for part in text.split(",")]
    return [value]


def _file(param: Parameter, base_dir: str, max_file_size: int | None) -> Coercer:
    summary_type = f"{_label(param)}: expected a file path or an http(s) URL"
    missing = f"{_label(param)}: the file does not exist"
    too_big = f"{_label(param)}: the file is over the app's limit of {_size(max_file_size or 0)}"

    def coerce(value: Any) -> str:
        if isinstance(value, MediaFile):  # a dataset's cell: a file by its kind, unwritten
            if max_file_size is not None and len(value.data) > max_file_size:
                size = _size(len(value.data))
                raise Invalid(ProblemKind.FILE_TOO_LARGE, too_big, f"{value!r} is {size}")
            return value
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str) or not value.strip():
            raise Invalid(_WRONG, summary_type, f"got {_shape(value)}")
        if is_url(value):
            return value
        path = os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))
        try:
            info = os.stat(path)
        except OSError:
            raise Invalid(
                ProblemKind.FILE_MISSING, missing, f"{value!r} (looked for {path})"
            ) from None
        if not stat.S_ISREG(info.st_mode):
            raise Invalid(ProblemKind.FILE_MISSING, missing, f"{value!r} is not a file ({path})")
        if max_file_size is not None and info.st_size > max_file_size:
            raise Invalid(
                ProblemKind.FILE_TOO_LARGE, too_big, f"{value!r} is {_size(info.st_size)}"
            )
        return path

    return coerce


def _file_list(param: Parameter, single: Coercer) -> Coercer:
    def coerce(value: Any) -> list[str]:
        return [single(item) for item in _as_list(value, lambda v: v)]

    return coerce


def _hashable(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool)) or value is None


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    return repr(value)


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:g} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return f"{size} B"
