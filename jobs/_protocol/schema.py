"""An app's API as read from its `/config` and info routes, and argument binding.

`AppSchema.parse(config, info)` is pure: it maps every listener (`dependencies[k]`) to an
`Endpoint` with its visible parameters and returns, the positions of hidden State slots,
and whether it is a generator. `Endpoint.bind(args, kwargs)` turns a call into the
positional `data` list the queue expects, raising before anything is sent.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ArgumentError, EndpointNotFound, ProtocolError
from .dialects import DIALECTS, Dialect, dialect_of
from .v3schema import is_v3, queued_fns, v3_info

__all__ = ["AppSchema", "Endpoint", "Parameter", "Return"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Parameter:
    """One visible input of an endpoint."""

    name: str
    label: str
    component: str
    python_type: str
    json_type: Mapping[str, Any]
    required: bool
    default: Any = None
    #: "single" for a file parameter, "list" for a list of files, None otherwise.
    file_kind: str | None = None
    #: The file is sent as a base64 data URL, not uploaded (a gradio 3.x Image).
    inline: bool = False
    choices: tuple[Any, ...] | None = None
    multiselect: bool = False
    example: Any = None

    @property
    def is_file(self) -> bool:
        return self.file_kind is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class Return:
    """One visible output of an endpoint."""

    label: str
    component: str
    python_type: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """One callable listener of the app."""

    fn_index: int
    api_name: str | None
    parameters: tuple[Parameter, ...]
    returns: tuple[Return, ...]
    #: Per input component: index into `parameters`, or None for a hidden (State) slot.
    input_slots: tuple[int | None, ...]
    #: Per output component: True when it is visible (not State).
    output_visible: tuple[bool, ...]
    generator: bool
    uses_state: bool
    visibility: str
    description: str = ""
    #: Why the endpoint cannot be called (None when it can); said when it is called.
    problem: str | None = None
    #: "required" / "optional" when the function takes a `gr.OAuthToken` (gradio 6).
    oauth_token: str | None = None
    #: False where a gradio 3.x app runs it outside its queue (a direct HTTP call).
    queued: bool = True

    @property
    def display_name(self) -> str:
        return self.api_name or f"fn_index={self.fn_index}"

    def bind(self, args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Match a call's arguments to parameters, filling defaults. Returns name -> value."""
        if self.problem is not None:
            raise ProtocolError(f"{self.display_name} cannot be called: {self.problem}")
        names = [p.name for p in self.parameters]
        if len(args) > len(self.parameters):
            raise ArgumentError(
                f"{self.display_name} takes {len(self.parameters)} argument(s) "
                f"({_listing(names)}) but {len(args)} were given",
                valid=names,
            )
        bound: dict[str, Any] = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names:
                raise ArgumentError(
                    f"{self.display_name} has no parameter {key!r}{_did_you_mean(key, names)}; "
                    f"its parameters are {_listing(names)}",
                    parameter=key,
                    valid=names,
                )
            if key in bound:
                raise ArgumentError(
                    f"{self.display_name}: parameter {key!r} was given both by position and "
                    "by keyword",
                    parameter=key,
                    valid=names,
                )
            bound[key] = value
        for param in self.parameters:
            if param.name in bound:
                continue
            if param.required:
                # The first sentence is gradio_client's, word for word: programs match it.
                raise ArgumentError(
                    f"No value provided for required argument: {param.name}. "
                    f"{self.display_name} is missing the required parameter {param.name!r} "
                    f"({param.component}, {param.python_type}); its parameters are "
                    f"{_listing(names)}",
                    parameter=param.name,
                    valid=names,
                )
            bound[param.name] = param.default
        return {name: bound[name] for name in names}

    def payload(self, values: Mapping[str, Any]) -> list[Any]:
        """The positional `data` list for `queue/join`: State slots are sent as None."""
        params = self.parameters
        return [None if i is None else values[params[i].name] for i in self.input_slots]

    def visible_outputs(self, data: Sequence[Any]) -> list[Any]:
        """Drop hidden (State) outputs. A `gr.update(...)` stays the update dict
        (`{"value": ..., "choices": ..., "__type__": "update"}`), as gradio_client returns it."""
        return [value for value, visible in zip(data, self.output_visible, strict=False) if visible]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppSchema:
    """Everything a client needs to know about one app."""

    version: str
    protocol: str
    api_prefix: str
    root: str
    connect_heartbeat: bool
    max_file_size: int | None
    space_id: str | None
    endpoints: tuple[Endpoint, ...]
    #: The app's public API info, as gradio_client's `view_api(return_format="dict")`
    #: returns it: `{"named_endpoints": {...}, "unnamed_endpoints": {...}}`.
    api_info: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def check_protocol(cls, config: Mapping[str, Any], url: str) -> Dialect:
        """The app's queue protocol; UnsupportedVersion, naming its version, for one this
        client does not speak."""
        return dialect_of(config, url)

    @classmethod
    def parse(
        cls,
        config: Mapping[str, Any],
        info: Mapping[str, Any],
        *,
        url: str,
        public_info: Mapping[str, Any] | None = None,
    ) -> AppSchema:
        """`info` is the app's info route with `all_endpoints=True`; `public_info` the
        same route without it (what gradio_client reads: file defaults there point at
        public URLs). Where both describe an endpoint, `public_info` is used."""
        cls.check_protocol(config, url)
        queued: frozenset[int] | None = None
        if is_v3(config):
            info = public_info = v3_info(config, info)
            queued = queued_fns(config)
        components = {c["id"]: c for c in config.get("components", ()) if "id" in c}
        public = _public_view(public_info if public_info is not None else info)
        named = {**(info.get("named_endpoints") or {}), **public["named_endpoints"]}
        # Before gradio 4.32 a dependency has no `id`: its fn_index is its place in the list.
        deps = [
            {"id": index, **dep}
            for index, dep in enumerate(config.get("dependencies", ()))
            if dep.get("backend_fn", True)
        ]
        owners = _info_owners(deps)
        endpoints = tuple(
            _endpoint(dep, components, named if owners.get(id(dep), True) else {}) for dep in deps
        )
        if queued is not None:
            endpoints = tuple(
                dataclasses.replace(e, queued=e.fn_index in queued) for e in endpoints
            )
        return cls(
            version=str(config.get("version", "unknown")),
            protocol=str(config.get("protocol", "ws")),
            api_prefix=str(config.get("api_prefix") or ""),
            root=str(config.get("root") or url),
            connect_heartbeat=bool(config.get("connect_heartbeat")),
            max_file_size=_int_or_none(config.get("max_file_size")),
            space_id=config.get("space_id"),
            endpoints=endpoints,
            api_info=public,
        )

    @property
    def dialect(self) -> Dialect:
        """The app's queue protocol, as this client speaks it."""
        return DIALECTS[self.protocol]

    @property
    def public_endpoints(self) -> list[Endpoint]:
        return [e for e in self.endpoints if e.api_name and e.visibility == "public"]

    def endpoint(self, api_name: str | None = None, fn_index: int | None = None) -> Endpoint:
        """Find an endpoint by api_name (leading slash optional) or fn_index; with neither,
        the app's only public endpoint."""
        if api_name is not None:
            wanted = "/" + api_name.lstrip("/")
            for ep in self.endpoints:
                if ep.api_name == wanted:
                    return ep
            names = [e.api_name for e in self.public_endpoints if e.api_name]
            raise EndpointNotFound(
                f"the app has no endpoint {wanted!r}{_did_you_mean(wanted, names)}; "
                f"its endpoints are {_listing(names)}",
                parameter="api_name",
                valid=names,
            )
        if fn_index is not None:
            for ep in self.endpoints:
                if ep.fn_index == fn_index:
                    return ep
            raise EndpointNotFound(
                f"the app has no function with fn_index={fn_index}; valid indices are "
                f"{sorted(e.fn_index for e in self.endpoints)}",
                parameter="fn_index",
            )
        public = self.public_endpoints
        if len(public) == 1:
            return public[0]
        names = [e.api_name for e in public if e.api_name]
        raise EndpointNotFound(
            f"the app has {len(public)} endpoints, so say which one with api_name=: "
            f"{_listing(names)}",
            parameter="api_name",
            valid=names,
        )


def _public_view(info: Mapping[str, Any]) -> dict[str, Any]:
    """The info route as gradio_client keeps it: public endpoints only, without the
    code snippets and visibility flags."""
    view: dict[str, Any] = {}
    for key in ("named_endpoints", "unnamed_endpoints"):
        kept: dict[str, Any] = {}
        for name, entry in (info.get(key) or {}).items():
            if not isinstance(entry, Mapping) or entry.get("show_api") is False:
                continue
            if entry.get("api_visibility", "public") != "public":
                continue
            kept[name] = {
                k: v
                for k, v in entry.items()
                if k not in ("code_snippets", "api_visibility", "show_api")
            }
        view[key] = kept
    return view


def _info_owners(deps: Sequence[Mapping[str, Any]]) -> dict[int, bool]:
    """For listeners sharing an api_name (gradio 6 can emit two `lambda_1`s when a
    Blocks is rendered into another), the info route describes only the last one: its
    entry overwrote the others'. Maps id(dep) -> whether the info entry is its own."""
    counts = Counter(str(d.get("api_name")) for d in deps if _named(d))
    seen: Counter[str] = Counter()
    owners: dict[int, bool] = {}
    for dep in deps:
        if not _named(dep):
            continue
        name = str(dep.get("api_name"))
        seen[name] += 1
        owners[id(dep)] = seen[name] == counts[name]
    return owners


def _named(dep: Mapping[str, Any]) -> bool:
    return dep.get("api_name") not in (None, False, "")


def _endpoint(
    dep: Mapping[str, Any], components: Mapping[int, Any], named: Mapping[str, Any]
) -> Endpoint:
    raw_name = dep.get("api_name")
    api_name = "/" + str(raw_name).lstrip("/") if _named(dep) else None
    info = named.get(api_name) if api_name else None
    missing = [
        cid for cid in (*dep.get("inputs", ()), *dep.get("outputs", ())) if cid not in components
    ]
    inputs = [components.get(cid, {}) for cid in dep.get("inputs", ())]
    outputs = [components.get(cid, {}) for cid in dep.get("outputs", ())]
    in_visible = [not _hidden(c) for c in inputs]
    out_visible = tuple(not _hidden(c) for c in outputs)
    parameters, returns = _described(info, inputs, outputs, in_visible, out_visible)
    slots: list[int | None] = []
    next_param = 0
    for vis in in_visible:
        slots.append(next_param if vis else None)
        next_param += int(vis)
    types = dep.get("types") or {}
    problem = None
    if missing:
        problem = (
            f"the app's config names component(s) {missing} for it but does not describe "
            "them; the app may be built dynamically (gr.render) — reconnect, or ask its author"
        )
    return Endpoint(
        fn_index=int(dep["id"]),
        api_name=api_name,
        parameters=parameters,
        returns=returns,
        input_slots=tuple(slots),
        output_visible=out_visible,
        generator=bool(types.get("generator")),
        uses_state=any(c.get("type") == "state" for c in inputs + outputs),
        visibility=_visibility(dep, api_name),
        description=str((info or {}).get("description") or ""),
        problem=problem,
        oauth_token=(info or {}).get("oauth_token"),
    )


def _described(
    info: Mapping[str, Any] | None,
    inputs: Sequence[Mapping[str, Any]],
    outputs: Sequence[Mapping[str, Any]],
    in_visible: Sequence[bool],
    out_visible: Sequence[bool],
) -> tuple[tuple[Parameter, ...], tuple[Return, ...]]:
    """Parameters and returns from the info entry when it fits the listener's visible
    inputs, else (an undocumented or a duplicate-named listener) from its components."""
    if info is not None and len(info.get("parameters", ())) == sum(in_visible):
        shown = [c for c, vis in zip(inputs, in_visible, strict=True) if vis]
        return (
            tuple(
                _parameter(_with_default(p, c), i)
                for i, (p, c) in enumerate(zip(info.get("parameters", ()), shown, strict=True))
            ),
            tuple(_return(r) for r in info.get("returns", ())),
        )
    parameters = tuple(
        _parameter_from_component(c) for c, vis in zip(inputs, in_visible, strict=True) if vis
    )
    returns = tuple(
        Return(label=_label(c), component=str(c.get("type", "")).title(), python_type="")
        for c, vis in zip(outputs, out_visible, strict=True)
        if vis
    )
    return parameters, returns


def _hidden(component: Mapping[str, Any]) -> bool:
    return bool(component.get("skip_api")) or component.get("type") == "state"


def _visibility(dep: Mapping[str, Any], api_name: str | None) -> str:
    if api_name is None:
        return "private"
    visibility = dep.get("api_visibility")
    if visibility:
        return str(visibility)
    return "public" if dep.get("show_api", True) else "undocumented"


def _with_default(raw: Mapping[str, Any], component: Mapping[str, Any]) -> Mapping[str, Any]:
    """Before gradio 4.22 the info route says nothing of defaults: the rule later servers
    apply (a component's initial value is its parameter's default) is applied here."""
    if "parameter_has_default" in raw:
        return raw
    value = (component.get("props") or {}).get("value")
    return {**raw, "parameter_has_default": value is not None, "parameter_default": value}


def _parameter(raw: Mapping[str, Any], index: int) -> Parameter:
    python_type = str((raw.get("python_type") or {}).get("type", ""))
    json_type = raw.get("type") or {}
    has_default = bool(raw.get("parameter_has_default"))
    choices, multiselect = _choices(json_type)
    return Parameter(
        name=str(raw.get("parameter_name") or _identifier(raw.get("label"), index)),
        label=str(raw.get("label") or ""),
        component=str(raw.get("component", "")),
        python_type=python_type,
        json_type=json_type,
        required=not has_default,
        default=raw.get("parameter_default") if has_default else None,
        file_kind=_file_kind(python_type, json_type),
        inline=bool(raw.get("inline_file")),
        choices=choices,
        multiselect=multiselect,
        example=raw.get("example_input"),
    )


def _parameter_from_component(component: Mapping[str, Any]) -> Parameter:
    props = component.get("props") or {}
    return Parameter(
        name=_identifier(props.get("label"), int(component.get("id", 0))),
        label=_label(component),
        component=str(component.get("type", "")).title(),
        python_type="",
        json_type={},
        required=props.get("value") is None,
        default=props.get("value"),
    )


def _return(raw: Mapping[str, Any]) -> Return:
    return Return(
        label=str(raw.get("label") or ""),
        component=str(raw.get("component", "")),
        python_type=str((raw.get("python_type") or {}).get("type", "")),
    )


def _choices(json_type: Mapping[str, Any]) -> tuple[tuple[Any, ...] | None, bool]:
    if "enum" in json_type:
        return tuple(json_type["enum"]), False
    items = json_type.get("items")
    if json_type.get("type") == "array" and isinstance(items, Mapping) and "enum" in items:
        return tuple(items["enum"]), True
    return None, False


def _file_kind(python_type: str, json_type: Mapping[str, Any]) -> str | None:
    compact = python_type.replace(" ", "").lower()
    if compact == "filepath" or _is_file_schema(json_type):
        return "single"
    if compact in ("list[filepath]", "list[filepath]|none"):
        return "list"
    items = json_type.get("items")
    if (
        json_type.get("type") == "array"
        and isinstance(items, Mapping)
        and (_is_file_schema(items) or "FileData" in str(items.get("$ref", "")))
    ):
        return "list"
    return None


def _is_file_schema(json_type: Mapping[str, Any]) -> bool:
    # FileData and its look-alikes (gradio 5's ImageData): an object with path and url.
    properties = json_type.get("properties")
    return isinstance(properties, Mapping) and "path" in properties and "url" in properties


def _label(component: Mapping[str, Any]) -> str:
    return str((component.get("props") or {}).get("label") or f"value_{component.get('id')}")


def _identifier(label: Any, index: int) -> str:
    text = "".join(ch if ch.isalnum() else "_" for ch in str(label or "")).strip("_").lower()
    return text or f"param_{index}"


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) else None


def _did_you_mean(word: str, options: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _listing(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names) if names else "(none)"
