"""An app's `AppSchema` as plain JSON data and back, and a digest of it.

Resume keeps the schema the rows were validated against in the run folder, so that a
run whose rows are all done can be finished without contacting any app, and so that a
changed app (different parameters, defaults or choices) is noticed: its digest differs.

Everything in an `AppSchema` came from the app's JSON config, so the round trip is
exact apart from tuples, which come back from JSON as lists and are rebuilt here.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from jobs import AppSchema, Endpoint, Parameter, Return

__all__ = ["schema_digest", "schema_from_dict", "schema_to_dict"]

_FORMAT = 1


def schema_to_dict(schema: AppSchema) -> dict[str, Any]:
    """The schema as JSON-serialisable data (tuples become lists)."""
    data = dataclasses.asdict(schema)
    data["format"] = _FORMAT
    return data


def schema_from_dict(data: Mapping[str, Any]) -> AppSchema:
    """Rebuild what `schema_to_dict` wrote. Raises ValueError if it is not such data."""
    try:
        if data.get("format") != _FORMAT:
            raise ValueError(f"unknown schema format {data.get('format')!r}")
        return AppSchema(
            version=str(data["version"]),
            protocol=str(data["protocol"]),
            api_prefix=str(data["api_prefix"]),
            root=str(data["root"]),
            connect_heartbeat=bool(data["connect_heartbeat"]),
            max_file_size=data["max_file_size"],
            space_id=data["space_id"],
            endpoints=tuple(_endpoint(e) for e in data["endpoints"]),
        )
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a cached schema: {exc!r}") from exc


def schema_digest(schema: AppSchema) -> str:
    """SHA-256 of the schema's canonical JSON: equal for apps with the same API."""
    data = schema_to_dict(schema)
    # Where the app runs is not part of its API: replicas of one app share a digest.
    for volatile in ("root", "space_id"):
        data.pop(volatile, None)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _endpoint(data: Mapping[str, Any]) -> Endpoint:
    return Endpoint(
        fn_index=int(data["fn_index"]),
        api_name=data["api_name"],
        parameters=tuple(_parameter(p) for p in data["parameters"]),
        returns=tuple(Return(**r) for r in data["returns"]),
        input_slots=tuple(data["input_slots"]),
        output_visible=tuple(data["output_visible"]),
        generator=bool(data["generator"]),
        uses_state=bool(data["uses_state"]),
        visibility=str(data["visibility"]),
        description=str(data.get("description", "")),
    )


def _parameter(data: Mapping[str, Any]) -> Parameter:
    choices = data.get("choices")
    return Parameter(
        name=data["name"],
        label=data["label"],
        component=data["component"],
        python_type=data["python_type"],
        json_type=dict(data["json_type"]),
        required=bool(data["required"]),
        default=data.get("default"),
        file_kind=data.get("file_kind"),
        choices=None if choices is None else tuple(choices),
        multiselect=bool(data.get("multiselect", False)),
        example=data.get("example"),
    )
