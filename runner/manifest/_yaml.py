"""A YAML reader that remembers where every key is, `${VAR}` interpolation, and overrides.

PyYAML's composed nodes carry `start_mark` (line, column); we convert nodes to plain
Python values ourselves and keep a side table `path -> Mark`, so every later error can
name the line of the offending key. The resolver follows YAML 1.2 where 1.1 surprises
users: only `true`/`false` are booleans (`yes`, `no`, `on`, `off` stay text) and dates
stay text, so `language: no` is Norwegian, not False.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import ManifestError, UnsetVariable

__all__ = ["Document", "KeyPath", "Mark", "apply_override", "dotted", "interpolate", "load_yaml"]

#: Where a value sits in the manifest tree: its keys and list positions, `("app", "replicas", 0)`.
KeyPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class Mark:
    """Where a key was written: a file (or `--set ...`) and a 1-based line and column."""

    file: str
    line: int | None = None
    column: int | None = None


@dataclass(slots=True)
class Document:
    """A parsed manifest tree and the position of each key and list item in it."""

    data: Any
    marks: dict[KeyPath, Mark]
    file: str

    def mark(self, path: KeyPath) -> Mark:
        """The position of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            found = self.marks.get(path[:end])
            if found is not None:
                return found
        return Mark(self.file)

    def error(self, path: KeyPath, message: str) -> ManifestError:
        mark = self.mark(path)
        return ManifestError(
            message, file=mark.file, line=mark.line, column=mark.column, key=dotted(path) or None
        )


def dotted(path: KeyPath) -> str:
    """`("app", "replicas", 0, "url")` -> `app.replicas[0].url`."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


class _Loader(yaml.SafeLoader):
    pass


_Loader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


#: The tags a manifest may carry, written or implied: plain data only. Any other tag
#: (`!!python/...`, `!!binary`, `!!set`, `!custom`) is refused, on any kind of node.
_DATA_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
#: How many values aliases may add by repeating what an anchor names. Real manifests
#: reuse a few mappings; "billion laughs" (aliases of aliases) would add 10**9.
MAX_ALIAS_VALUES = 100_000


def load_yaml(text: str, *, file: str) -> Document:
    """Parse one YAML document into plain values plus key positions; `ManifestError` if bad
    (invalid YAML, a tag other than plain data, aliases expanding past `MAX_ALIAS_VALUES`)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        marks: dict[KeyPath, Mark] = {}
        data = None if node is None else _Converter(loader, marks, file).convert(node, ())
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = ": ".join(p for p in (exc.context, exc.problem) if p)
        raise ManifestError(
            f"this is not valid YAML: {problem}",
            file=file,
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"this is not valid YAML: {exc}", file=file) from None
    finally:
        loader.dispose()
    return Document(data=data, marks=marks, file=file)


def _mark(node: yaml.Node, file: str) -> Mark:
    return Mark(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    """Composed nodes -> plain values, recording positions; checks tags and aliases.

    PyYAML composes an alias as the very node its anchor names, so a node met a second
    time is an alias expansion: those are counted against `MAX_ALIAS_VALUES`, and a node
    met again inside itself (a recursive alias) is refused."""

    def __init__(self, loader: _Loader, marks: dict[KeyPath, Mark], file: str) -> None:
        self.loader, self.marks, self.file = loader, marks, file
        self._seen: set[int] = set()
        self._open: set[int] = set()
        self._repeated = 0

    def error(self, node: yaml.Node, path: KeyPath, message: str) -> ManifestError:
        mark = _mark(node, self.file)
        return ManifestError(
            message, file=self.file, line=mark.line, column=mark.column, key=dotted(path) or None
        )

    def convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self._check(node, path)
        self._open.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            return self.loader.construct_object(node, deep=True)
        finally:
            self._open.discard(id(node))

    def _check(self, node: yaml.Node, path: KeyPath) -> None:
        if node.tag not in _DATA_TAGS:
            kind = (
                "mapping"
                if isinstance(node, yaml.MappingNode)
                else "list"
                if isinstance(node, yaml.SequenceNode)
                else "value"
            )
            raise self.error(
                node,
                path,
                f"the tag {_short(node.tag)!r} on this {kind} is not allowed: a manifest "
                "holds plain data (text, numbers, true/false, null, lists, mappings); remove "
                "the tag",
            )
        if id(node) in self._open:
            raise self.error(node, path, "this alias refers to itself; use plain values")
        if id(node) in self._seen:
            self._repeated += 1
            if self._repeated > MAX_ALIAS_VALUES:
                # The node's own position is its anchor's; the key it sits under is where
                # the expansion was written.
                top = path[:1]
                mark = self.marks.get(top) or _mark(node, self.file)
                raise ManifestError(
                    f"aliases (*name) repeat more than {MAX_ALIAS_VALUES:,} values here "
                    "(aliases of aliases multiply); write the values out, or use a CSV or "
                    "JSONL file for many rows",
                    file=self.file,
                    line=mark.line,
                    column=mark.column,
                    key=dotted(top) or None,
                )
        self._seen.add(id(node))

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        self.loader.flatten_mapping(node)  # resolves `<<: *anchor` merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            name = self._key(key_node, path)
            child = (*path, name)
            if name in out:
                first = self.marks[child]
                raise self.error(
                    key_node,
                    child,
                    f"the key {name!r} is given twice (first on line {first.line}); keep one",
                )
            self.marks[child] = _mark(key_node, self.file)
            out[name] = self.convert(value_node, child)
        return out

    def _key(self, key_node: yaml.Node, path: KeyPath) -> str:
        key = self.convert(key_node, path) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, (str, int, float)) or isinstance(key, bool):
            shown = repr(key) if key is not None else "a list or mapping"
            raise self.error(key_node, path, f"expected a plain name as a key, got {shown}")
        return str(key)

    def _sequence(self, node: yaml.SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, item in enumerate(node.value):
            item_path = (*path, index)
            self.marks[item_path] = _mark(item, self.file)
            items.append(self.convert(item, item_path))
        return items


_REFERENCE = re.compile(r"\$\$|\$\{([^}]*)\}")
_VARIABLE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


def interpolate(
    doc: Document,
    environ: Mapping[str, str] | None = None,
    *,
    used: dict[str, str] | None = None,
) -> dict[KeyPath, str]:
    """Replace `${VAR}` / `${VAR:-default}` in every string value of `doc` (in place).

    `$$` is a literal `$`. Returns the original text of every value that changed, keyed by
    path, so a dump can write the template back instead of the (possibly secret) value.
    Each variable taken from the environment is added to `used` (name -> value), so the
    run can mask the secret ones wherever it writes.
    """
    env = os.environ if environ is None else environ
    templates: dict[KeyPath, str] = {}

    def visit(value: Any, path: KeyPath) -> Any:
        if isinstance(value, dict):
            return {k: visit(v, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [visit(v, (*path, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "$" in value:
            result = _substitute(doc, value, path, env, used)
            if result != value:
                templates[path] = value
            return result
        return value

    doc.data = visit(doc.data, ())
    return templates


def _substitute(
    doc: Document, text: str, path: KeyPath, env: Mapping[str, str], used: dict[str, str] | None
) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        inner = _VARIABLE.fullmatch(match.group(1))
        if inner is None:
            raise doc.error(
                path,
                f"{match.group(0)!r} is not a variable reference; expected ${{NAME}} or "
                "${NAME:-default} (write $$ for a literal $)",
            )
        name, default = inner.group(1), inner.group(2)
        if name in env:
            if used is not None:
                used[name] = env[name]
            return env[name]
        if default is not None:
            return default
        mark = doc.mark(path)
        raise UnsetVariable(
            name, file=mark.file, line=mark.line, column=mark.column, key=dotted(path)
        )

    result = _REFERENCE.sub(replace, text)
    leftover = _REFERENCE.sub("", text)
    if "${" in leftover:
        raise doc.error(
            path, f"{text!r} has an unclosed '${{'; expected ${{NAME}} or ${{NAME:-default}}"
        )
    return result


def apply_override(doc: Document, assignment: str, *, source: str | None = None) -> None:
    """Apply `run.concurrency=8` to `doc` (in place); the value is read as YAML.

    List items are addressed by index: `app.replicas.0.url=http://...`. Positions of the
    overridden keys become `source` (default `--set <assignment>`), so later errors point
    at the command line instead of the file.
    """
    label = source or f"--set {assignment}"
    key, sep, raw = assignment.partition("=")
    parts = [p.strip() for p in key.split(".")]
    if not sep or not all(parts):
        raise ManifestError(
            "expected KEY=VALUE with a dotted key, like run.concurrency=8", file=label
        )
    value = _override_value(raw, label)
    if not isinstance(doc.data, dict):
        doc.data = {}
    node: Any = doc.data
    path: KeyPath = ()
    for index, part in enumerate(parts):
        step: str | int = part
        if isinstance(node, list):
            if not part.isdigit() or int(part) > len(node):
                raise ManifestError(
                    f"{dotted(path)} is a list of {len(node)}; expected an index from 0 to "
                    f"{len(node)} in {key!r}",
                    file=label,
                )
            step = int(part)
        path = (*path, step)
        last = index == len(parts) - 1
        if last:
            _assign(node, step, value)
        else:
            child = node[step] if _has(node, step) else None
            if not isinstance(child, (dict, list)):
                child = {}
                _assign(node, step, child)
            node = child
        doc.marks[path] = Mark(label)
    for stale in [p for p in doc.marks if len(p) > len(path) and p[: len(path)] == path]:
        del doc.marks[stale]


def _override_value(raw: str, label: str) -> Any:
    """The value of `--set key=value`, read as YAML; text that is not YAML stays text, but
    a tag or an alias bomb is refused as in a file."""
    if not raw.strip():
        return ""
    try:
        yaml.compose(raw, Loader=_Loader)
    except yaml.YAMLError:
        return raw
    return load_yaml(raw, file=label).data


def _has(node: Any, step: str | int) -> bool:
    if isinstance(node, list):
        return isinstance(step, int) and step < len(node)
    return isinstance(node, dict) and step in node


def _assign(node: Any, step: str | int, value: Any) -> None:
    if isinstance(node, list) and isinstance(step, int):
        if step == len(node):
            node.append(value)
        else:
            node[step] = value
    elif isinstance(node, dict):
        node[step] = value


def _short(tag: str) -> str:
    """A tag as it is written: `!!python/object`, not `tag:yaml.org,2002:python/object`."""
    return "!!" + tag.removeprefix("tag:yaml.org,2002:") if tag.startswith("tag:yaml.org") else tag
