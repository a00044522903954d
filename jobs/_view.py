"""The text and dict that `view_api` shows."""

from __future__ import annotations

import copy
from typing import Any

from ._protocol.schema import AppSchema, Endpoint

__all__ = ["render_api"]


def render_api(schema: AppSchema, *, all_endpoints: bool = False) -> tuple[str, dict[str, Any]]:
    """The text `view_api` prints, and the dict it returns: the app's public API info in
    the shape gradio_client returns (a copy: changing it changes nothing here)."""
    endpoints = [
        e for e in schema.endpoints if e.api_name and (all_endpoints or e.visibility == "public")
    ]
    title = "Client.predict() Usage Info"
    lines = [title, "-" * len(title), f"Named API endpoints: {len(endpoints)}", ""]
    for endpoint in endpoints:
        lines.extend(_endpoint_lines(endpoint))
    as_dict = copy.deepcopy(dict(schema.api_info)) or {
        "named_endpoints": {},
        "unnamed_endpoints": {},
    }
    return "\n".join(lines).rstrip() + "\n", as_dict


def _endpoint_lines(endpoint: Endpoint) -> list[str]:
    assert endpoint.api_name is not None
    params = ", ".join(p.name for p in endpoint.parameters)
    sep = ", " if params else ""
    returns = ", ".join(r.label for r in endpoint.returns) or "None"
    if len(endpoint.returns) > 1:
        returns = f"({returns})"
    lines = [f' - predict({params}{sep}api_name="{endpoint.api_name}") -> {returns}']
    if endpoint.description:
        lines.append(f"    {endpoint.description}")
    lines.append("    Parameters:")
    if not endpoint.parameters:
        lines.append("     - None")
    for p in endpoint.parameters:
        need = "required" if p.required else f"not required, defaults to: {p.default!r}"
        lines.append(
            f"     - [{p.component}] {p.name}: {_type_text(p.python_type, p.is_file)} ({need})"
        )
    lines.append("    Returns:")
    if not endpoint.returns:
        lines.append("     - None")
    for r in endpoint.returns:
        lines.append(f"     - [{r.component}] {r.label}: {_type_text(r.python_type, False)}")
    lines.append("")
    return lines


def _type_text(python_type: str, is_file: bool) -> str:
    text = python_type or "Any"
    if is_file:
        text += " (a local path or URL; wrapped with handle_file automatically)"
    return text
