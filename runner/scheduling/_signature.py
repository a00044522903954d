"""Whether a replica serves the same API as the one the run was validated against.

Replicas of one app answer with the same endpoint signature: the run's endpoint, its
parameters (name, component, type, required) in order, and its outputs. Another app,
or another version of it, usually differs there; jobs bound and keyed for one would
be sent wrong to the other, so at the start of a run such a replica is refused, with
what differs (`api_difference`). Defaults are not compared: an app may compute them
when it starts (a timestamp, a seed), and every row sends its values, defaults filled,
explicitly.

A replica that comes back mid-run (a restart, a redeploy, a new address) is compared by
name instead (`compare_by_name`): rows are given by parameter name and bound to the
replica's own API when they are sent, so parameters in another order, a new optional
parameter, or outputs in another order (records name outputs by label) still compute
what the row asked for. A parameter gone, retyped or newly required, a choice gone, an
output renamed: the rows no longer fit, and the replica must not get them.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from itertools import zip_longest

from jobs import AppSchema, Endpoint, JobsError, Parameter, Return

__all__ = [
    "ApiChange",
    "api_difference",
    "compare_by_name",
    "endpoint_difference",
    "output_names",
    "signature_of",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiChange:
    """How a replica's endpoint differs from the validated one, by name."""

    #: Every row still fits the new signature when bound by name.
    fits: bool
    #: What changed, as one sentence naming parameters and outputs.
    description: str


def signature_of(endpoint: Endpoint) -> str:
    """A short hash of what the rows' meaning depends on: the endpoint's name, its
    parameters (name, component, type, required, file kind, choices) in order, and its
    outputs (label, component, type) in order. Defaults are left out (see above)."""
    canon = [
        endpoint.api_name,
        endpoint.generator,
        [
            [p.name, p.component, p.python_type, p.required, p.file_kind, _choices(p)]
            for p in endpoint.parameters
        ],
        [[r.label, r.component, r.python_type] for r in endpoint.returns],
    ]
    text = json.dumps(canon, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def output_names(endpoint: Endpoint) -> list[str]:
    """The names a record gives the endpoint's outputs: their labels, made unique."""
    names: list[str] = []
    for index, ret in enumerate(endpoint.returns):
        name = ret.label or f"output_{index}"
        while name in names:
            name = f"{name}_{index}"
        names.append(name)
    return names


def compare_by_name(
    validated: Endpoint, schema: AppSchema, api_name: str | None
) -> ApiChange | None:
    """How `schema`'s endpoint differs from `validated`, by name; None when the
    signatures are the same."""
    current = _same_endpoint(schema, validated)
    if current is None:
        names = ", ".join(e.display_name for e in schema.public_endpoints) or "none"
        return ApiChange(
            fits=False,
            description=f"it has no endpoint {validated.display_name} any more (it has: {names})",
        )
    if signature_of(current) == signature_of(validated):
        return None
    breaking, benign = _named_changes(validated, current)
    what = "; ".join(breaking + benign) or "its signature changed in nothing the rows depend on"
    return ApiChange(fits=not breaking, description=f"{validated.display_name}: {what}")


def _named_changes(old: Endpoint, new: Endpoint) -> tuple[list[str], list[str]]:
    """(changes the rows do not fit, changes they do)."""
    breaking: list[str] = []
    benign: list[str] = []
    if old.generator != new.generator:
        breaking.append("it is a generator now" if new.generator else "it is no generator now")
    by_name = {p.name: p for p in new.parameters}
    for mine in old.parameters:
        theirs = by_name.get(mine.name)
        if theirs is None:
            breaking.append(f"parameter {mine.name!r} is gone")
        elif _kind(mine) != _kind(theirs):
            breaking.append(
                f"parameter {mine.name!r} is {theirs.component} ({theirs.python_type}) now, "
                f"was {mine.component} ({mine.python_type})"
            )
        elif gone := _choices_gone(mine, theirs):
            breaking.append(f"parameter {mine.name!r} lost the choice(s) {gone}")
        else:
            benign.extend(_detail_changes(mine, theirs))
    known = {p.name for p in old.parameters}
    for theirs in new.parameters:
        if theirs.name in known:
            continue
        if theirs.required:
            breaking.append(f"a new required parameter {theirs.name!r}")
        else:
            benign.append(f"a new optional parameter {theirs.name!r} (its default is sent)")
    old_order = [p.name for p in old.parameters]
    new_order = [p.name for p in new.parameters if p.name in known]
    if not breaking and old_order != new_order:
        benign.append(
            f"parameters in another order ({', '.join(new_order)}; were {', '.join(old_order)})"
        )
    _output_changes(old, new, breaking, benign)
    return breaking, benign


def _output_changes(old: Endpoint, new: Endpoint, breaking: list[str], benign: list[str]) -> None:
    mine = list(zip(output_names(old), (_return(r) for r in old.returns), strict=True))
    theirs = list(zip(output_names(new), (_return(r) for r in new.returns), strict=True))
    if mine == theirs:
        return
    if Counter(mine) == Counter(theirs):
        # Records name outputs by label: the same outputs in another order read the same.
        order = ", ".join(name for name, _ in theirs)
        benign.append(f"outputs in another order ({order}; recorded by label)")
        return
    there = ", ".join(f"{n!r} {t}" for n, t in theirs) or "nothing"
    here = ", ".join(f"{n!r} {t}" for n, t in mine) or "nothing"
    breaking.append(f"it returns {there} now, was {here}")


def _kind(parameter: Parameter) -> tuple[object, ...]:
    """What a value must be to fit the parameter. With choices, gradio's type names them
    (`Literal['a', 'b']`): choices are compared on their own, so a choice added or moved
    is not a change of type."""
    kind = parameter.python_type if parameter.choices is None else "choices"
    return (parameter.component, kind, parameter.file_kind, parameter.multiselect)


def _detail_changes(mine: Parameter, theirs: Parameter) -> list[str]:
    """Changes every row fits: each row sends every parameter's value explicitly."""
    out = []
    if mine.required != theirs.required:
        state = "required" if theirs.required else "optional"
        out.append(f"parameter {mine.name!r} is {state} now (every row sends it)")
    if _choices(mine) != _choices(theirs):
        out.append(f"parameter {mine.name!r} has other choices now (none the rows use is gone)")
    return out


def _choices(parameter: Parameter) -> list[str] | None:
    if parameter.choices is None:
        return None
    return [repr(c) for c in parameter.choices]


def _choices_gone(mine: Parameter, theirs: Parameter) -> str:
    if mine.choices is None or theirs.choices is None:
        return ""  # no choices to lose (or any value is accepted now)
    left = {repr(c) for c in theirs.choices}
    return ", ".join(repr(c) for c in mine.choices if repr(c) not in left)


def api_difference(reference: AppSchema, other: AppSchema, api_name: str | None) -> str | None:
    """What in `other` differs from `reference` for the endpoint `api_name` (None: the
    app's only endpoint), as one sentence; None when the signatures agree."""
    try:
        ours = reference.endpoint(api_name)
    except JobsError:
        return None  # the reference lacks it too: validation reports that, not this
    return endpoint_difference(ours, other)


def endpoint_difference(ours: Endpoint, other: AppSchema) -> str | None:
    """What in `other`'s endpoint differs from `ours`, position by position, as one
    sentence; None when the signatures agree."""
    theirs = _same_endpoint(other, ours)
    if theirs is None:
        names = ", ".join(e.display_name for e in other.public_endpoints) or "none"
        return f"it has no endpoint {ours.display_name} (it has: {names})"
    differences = _parameter_differences(ours, theirs) + _return_differences(ours, theirs)
    if ours.generator != theirs.generator:
        differences.append("one is a generator and the other is not")
    if not differences:
        return None
    return f"{ours.display_name}: " + "; ".join(differences)


def _same_endpoint(schema: AppSchema, endpoint: Endpoint) -> Endpoint | None:
    try:
        if endpoint.api_name is not None:
            return schema.endpoint(endpoint.api_name)
        return schema.endpoint(fn_index=endpoint.fn_index)
    except JobsError:
        return None


def _parameter_differences(ours: Endpoint, theirs: Endpoint) -> list[str]:
    out = []
    pairs = zip_longest(ours.parameters, theirs.parameters)
    for index, (mine, other) in enumerate(pairs, start=1):
        if mine is None:
            assert other is not None
            out.append(f"it has an extra parameter {_parameter(other)}")
        elif other is None:
            out.append(f"it lacks parameter {_parameter(mine)}")
        elif _parameter_signature(mine) != _parameter_signature(other):
            out.append(f"parameter {index} is {_parameter(other)} there, {_parameter(mine)} here")
    return out


def _return_differences(ours: Endpoint, theirs: Endpoint) -> list[str]:
    if [_return(r) for r in ours.returns] == [_return(r) for r in theirs.returns]:
        return []
    there = ", ".join(_return(r) for r in theirs.returns) or "nothing"
    here = ", ".join(_return(r) for r in ours.returns) or "nothing"
    return [f"it returns {there}, not {here}"]


def _parameter_signature(parameter: Parameter) -> tuple[str, str, str, bool]:
    return (parameter.name, parameter.component, parameter.python_type, parameter.required)


def _parameter(parameter: Parameter) -> str:
    required = "required" if parameter.required else "optional"
    return f"{parameter.name!r} ({parameter.component}, {parameter.python_type}, {required})"


def _return(value: Return) -> str:
    return f"{value.component} ({value.python_type})"
