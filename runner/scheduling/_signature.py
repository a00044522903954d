"""Whether a replica serves the same API as the one the run was validated against.

Replicas of one app answer with the same endpoint signature: the run's endpoint, its
parameters (name, component, type, required) in order, and its outputs. Another app,
or another version of it, usually differs there; jobs bound and keyed for one would
be sent wrong to the other, so such a replica is refused, with what differs. Defaults
are not compared: an app may compute them when it starts (a timestamp, a seed).
"""

from __future__ import annotations

from itertools import zip_longest

from jobs import AppSchema, Endpoint, JobsError, Parameter, Return

__all__ = ["api_difference"]


def api_difference(reference: AppSchema, other: AppSchema, api_name: str | None) -> str | None:
    """What in `other` differs from `reference` for the endpoint `api_name` (None: the
    app's only endpoint), as one sentence; None when the signatures agree."""
    try:
        ours = reference.endpoint(api_name)
    except JobsError:
        return None  # the reference lacks it too: validation reports that, not this
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
