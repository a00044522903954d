"""The text and dict that `view_api` shows."""

from __future__ import annotations

from typing import Any

from ._schema import AppSchema, Endpoint

__all__ = ["render_api"]


def render_api(schema: AppSchema, *, all_endpoints: bool = False) -> tuple[str, dict[str, Any]]:
    endpoints = [
        e for e in schema.endpoints if e.api_name and (all_endpoints or e.visibility == "public")
    ]
    named = {e.api_name: _endpoint_dict(e) for e in endpoints if e.api_name}
    title = "Client.predict() Usage Info"
    lines = [title, "-" * len(title), f"Named API endpoints: {len(endpoints)}", ""]
    for endpoint in endpoints:
        lines.extend(_endpoint_lines(endpoint))
    return "\n".join(lines).rstrip() + "\n", {"named_endpoints": named, "unnamed_endpoints": {}}


def _endpoint_dict(endpoint: Endpoint) -> dict[str, Any]:
    return {
        "fn_index": endpoint.fn_index,
        "generator": endpoint.generator,
        "description": endpoint.description,
        "parameters": [
            {
                "name": p.name,
                "label": p.label,
                "type": p.python_type,
                "component": p.component,
                "required": p.required,
                "default": p.default,
                **({"choices": list(p.choices)} if p.choices is not None else {}),
            }
            for p in endpoint.parameters
        ],
        "returns": [
            {"label": r.label, "type": r.python_type, "component": r.component}
            for r in endpoint.returns
        ],
    }


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
