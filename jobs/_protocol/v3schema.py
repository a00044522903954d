"""A gradio 3.x app's API, put in the shape `_schema` reads from 4.x+ apps (sans-IO).

3.x apps above 3.36.1 describe their endpoints at `GET /info?serialize=False`, but
without parameter names or defaults; older ones have no such route, and gradio_client
then posts the config to a helper Space on the Hub. Here both come from the config
itself: each input's name is its label (as an identifier), its default the component's
initial value (when it has one), and file components (`file`, `uploadbutton`, `audio`,
`video`, `model3d`: the ones 3.x takes as `{name, is_file}` dicts) say `filepath`, and
so do `image` inputs, marked `inline_file`: 3.x takes and returns images as base64 data
URLs (`data:image/png;base64,...`), not as uploaded files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["has_info_route", "is_v3", "queued_fns", "v3_info", "version_of"]

#: Where 3.x queues through the websocket at all (older releases poll over HTTP).
_WS_SINCE = (3, 2)
_FILE_COMPONENTS = frozenset({"file", "uploadbutton", "audio", "video", "model3d"})
_INLINE_COMPONENTS = frozenset({"image"})
_SKIPPED = frozenset({"state"})


def is_v3(config: Mapping[str, Any]) -> bool:
    return "protocol" not in config


def version_of(config: Mapping[str, Any]) -> tuple[int, ...] | None:
    """The app's gradio release as numbers (`"3.50.2"` -> (3, 50, 2)); None if unknown."""
    parts: list[int] = []
    for piece in str(config.get("version", "")).split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit()) if piece[:1].isdigit() else ""
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def has_info_route(config: Mapping[str, Any]) -> bool:
    """Whether `/info?serialize=False` describes the API: above 3.36.1, as gradio_client
    decides it."""
    version = version_of(config)
    return version is not None and version > (3, 36, 1)


def queued_fns(config: Mapping[str, Any]) -> frozenset[int]:
    """The fn_indexes a 3.x app runs through its queue: with the queue enabled (off by
    default before 3.x on Spaces turned it on), from 3.2, and not `queue=False`."""
    version = version_of(config)
    if not config.get("enable_queue") or (version is not None and version < _WS_SINCE):
        return frozenset()
    return frozenset(
        i for i, dep in enumerate(config.get("dependencies", ())) if dep.get("queue") is not False
    )


def v3_info(config: Mapping[str, Any], info: Mapping[str, Any] | None) -> dict[str, Any]:
    """`{"named_endpoints": ..., "unnamed_endpoints": ...}` with the names, defaults and
    file types the 4.x+ info has; from the app's `info` where it has one."""
    components = {c["id"]: c for c in config.get("components", ()) if "id" in c}
    named: dict[str, Any] = {}
    unnamed: dict[str, Any] = {}
    given_named = (info or {}).get("named_endpoints") or {}
    given_unnamed = (info or {}).get("unnamed_endpoints") or {}
    for index, dep in enumerate(config.get("dependencies", ())):
        if not dep.get("backend_fn", True) or dep.get("api_name") is False:
            continue
        inputs = [components.get(cid, {}) for cid in dep.get("inputs", ())]
        outputs = [components.get(cid, {}) for cid in dep.get("outputs", ())]
        api_name = dep.get("api_name")
        given = given_named.get(f"/{api_name}") if api_name else given_unnamed.get(str(index))
        entry = _entry(inputs, outputs, given)
        if api_name:
            named[f"/{api_name}"] = entry
        else:
            unnamed[str(index)] = entry
    return {"named_endpoints": named, "unnamed_endpoints": unnamed}


def _entry(
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    given: Mapping[str, Any] | None,
) -> dict[str, Any]:
    visible_in = [c for c in inputs if c.get("type") not in _SKIPPED]
    visible_out = [c for c in outputs if c.get("type") not in _SKIPPED]
    given_params = list((given or {}).get("parameters") or ())
    given_returns = list((given or {}).get("returns") or ())
    parameters = [
        _parameter(c, given_params[i] if i < len(given_params) else {}, i)
        for i, c in enumerate(visible_in)
    ]
    returns = [
        _described(c, given_returns[i] if i < len(given_returns) else {})
        for i, c in enumerate(visible_out)
    ]
    return {"parameters": parameters, "returns": returns}


def _parameter(
    component: Mapping[str, Any], given: Mapping[str, Any], index: int
) -> dict[str, Any]:
    entry = _described(component, given)
    entry["parameter_name"] = _identifier(entry["label"], index)
    value = (component.get("props") or {}).get("value")
    entry["parameter_has_default"] = value is not None
    entry["parameter_default"] = value
    return entry


def _described(component: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(component.get("type", ""))
    props = component.get("props") or {}
    entry = {k: v for k, v in given.items() if k != "serializer"}
    entry.setdefault("label", props.get("label") or f"value_{component.get('id')}")
    entry.setdefault("component", kind.title())
    entry.setdefault("type", {})
    entry.setdefault("python_type", {"type": "", "description": ""})
    if kind in _FILE_COMPONENTS:
        many = props.get("file_count") in ("multiple", "directory")
        entry["python_type"] = {"type": "List[filepath]" if many else "filepath", "description": ""}
    elif kind in _INLINE_COMPONENTS and props.get("tool") != "sketch":
        entry["python_type"] = {"type": "filepath", "description": ""}
        entry["inline_file"] = True
    return entry


def _identifier(label: Any, index: int) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in str(label or "")).strip("_").lower()
    if not text or text[0].isdigit():
        return f"param_{index}"
    return text
