"""Plain manifest data (with key positions) -> the typed `Manifest`, or a `ManifestError`.

Each section is a short function that checks its keys (unknown ones get a did-you-mean),
reads each value with a typed getter, and builds a frozen spec. Values that came from the
environment are never echoed in messages: they are shown as their `${VAR}` text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jobs import Limits

from ._fields import Fields, did_you_mean
from ._model import (
    ALL_GPUS,
    LOCAL_READY_TIMEOUT,
    AppSpec,
    DuplicateReplica,
    InputsSpec,
    LocalReplica,
    Manifest,
    OutputSpec,
    ReplicaSpec,
    RunSpec,
    Secret,
    SourceKind,
    SpaceReplica,
    UrlReplica,
)
from ._yaml import Document
from ._yaml import Path as KeyPath

__all__ = ["parse_document"]

TOP_KEYS = ("name", "app", "inputs", "run", "output")
APP_KEYS = ("endpoint", "replicas", "hf_token", "url", "space", "limits")
LIMIT_SIZES = ("max_message_bytes", "max_json_bytes", "max_download_bytes")
LIMIT_TIMES = ("connect_timeout", "read_timeout")
REPLICA_KEYS = {
    "url": ("url", "concurrency"),
    "space": ("space", "concurrency"),
    "duplicate": (
        "duplicate",
        "count",
        "hardware",
        "private",
        "sleep_timeout",
        "to_id",
        "concurrency",
        "after",
    ),
    "local": (
        "local",
        "count",
        "gpus",
        "per_gpu",
        "ready_timeout",
        "python",
        "env",
        "args",
        "inherit_packages",
        "concurrency",
    ),
}
SOURCES = ("rows", "csv", "jsonl", "parquet", "files")
INPUT_KEYS = (*SOURCES, "map", "matrix", "limit", "delimiter", "encoding")
RUN_KEYS = (
    "concurrency",
    "rate",
    "retries",
    "timeout",
    "retry_app_errors",
    "retry_timeouts",
    "grace",
    "share_session",
    "max_wait",
    "budget",
)
OUTPUT_KEYS = ("dir", "export", "download_files")
EXPORT_FORMATS = ("csv", "parquet", "jsonl")
DUPLICATE_AFTER = ("pause", "sleep", "keep")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: `owner/name` or `owner/name@revision`: a Space to run locally.
_SPACE_AT = re.compile(r"[A-Za-z0-9][\w-]*/[A-Za-z0-9_][\w.-]*(@[\w./-]+)?", re.ASCII)
_MISSING = object()


def parse_document(
    doc: Document, *, manifest_path: Path, templates: dict[KeyPath, str]
) -> Manifest:
    return _Parser(doc, manifest_path, templates).manifest()


class _Parser(Fields):
    """One section a method: checks its keys, reads each value, builds its spec."""

    # -- sections ------------------------------------------------------------------------

    def manifest(self) -> Manifest:
        top = self.section((), self.doc.data, TOP_KEYS)
        name = self.name(top.get("name", _MISSING))
        app = self.app(top.get("app", _MISSING))
        inputs = self.inputs(top.get("inputs", {}))
        run = self.run(top.get("run", {}))
        output = self.output(top.get("output", {}), name)
        return Manifest(
            name=name,
            path=self.file,
            base_dir=self.base,
            app=app,
            inputs=inputs,
            run=run,
            output=output,
            templates=dict(self.templates),
            marks=dict(self.doc.marks),
        )

    def name(self, value: Any) -> str:
        if value is _MISSING or value is None:
            return self.file.stem if _NAME.fullmatch(self.file.stem) else "run"
        text = self.text(("name",), value)
        if not _NAME.fullmatch(text):
            self.fail(
                ("name",),
                f"expected a folder-safe name (letters, digits, '.', '_', '-'; not starting "
                f"with '.' or '-'), got {self.show(('name',), value)}",
            )
        return text

    def app(self, value: Any) -> AppSpec:
        if value is _MISSING or value is None or value == {}:
            self.fail(
                ("app",),
                "the manifest says nothing about the app; expected app: with replicas: "
                "(url:, space:, duplicate: or local:), or pass --app URL_OR_SPACE",
            )
        if isinstance(value, str):
            self.move_template(("app",), ("app", "replicas", 0, _text_kind(value)))
            return AppSpec(endpoint=None, replicas=(self.replica_text(("app",), value),))
        app = self.section(("app",), value, APP_KEYS)
        replicas = self.replicas(app)
        endpoint = app.get("endpoint")
        if endpoint is not None:
            endpoint = "/" + self.text(("app", "endpoint"), endpoint).strip().lstrip("/")
            if endpoint == "/":
                self.fail(("app", "endpoint"), "expected an api_name like /predict, got ''")
        token = app.get("hf_token")
        secret = None
        if token is not None:
            secret = Secret(self.text(("app", "hf_token"), token))
        return AppSpec(
            endpoint=endpoint, replicas=replicas, hf_token=secret, limits=self.limits(app)
        )

    def limits(self, app: Mapping[str, Any]) -> Limits:
        path: KeyPath = ("app", "limits")
        spec = self.section(path, app.get("limits") or {}, (*LIMIT_SIZES, *LIMIT_TIMES))
        values: dict[str, Any] = {}
        for name in LIMIT_SIZES:
            if name in spec:
                value = spec[name]
                none = name == "max_download_bytes" and value in (None, "none")
                values[name] = None if none else self.size((*path, name), value)
        for name in LIMIT_TIMES:
            if name in spec:
                seconds = self.duration((*path, name), spec[name])
                if seconds <= 0:
                    self.fail((*path, name), f"expected a duration over 0, got {spec[name]!r}")
                values[name] = seconds
        return Limits(**values)

    def replicas(self, app: Mapping[str, Any]) -> tuple[ReplicaSpec, ...]:
        shorthand = [k for k in ("url", "space") if k in app]
        if shorthand and "replicas" in app:
            self.fail(
                ("app", shorthand[0]),
                f"give either app.{shorthand[0]} or app.replicas, not both",
            )
        if len(shorthand) > 1:
            self.fail(("app", "space"), "give either app.url or app.space, not both")
        if shorthand:
            kind = shorthand[0]
            self.move_template(("app", kind), ("app", "replicas", 0, kind))
            return (self.replica(("app",), {kind: app[kind]}),)
        path: KeyPath = ("app", "replicas")
        items = app.get("replicas")
        if items is None:
            self.fail(
                path,
                "expected at least one replica: a list of url:, space:, duplicate: or local: "
                "entries (or pass --app URL_OR_SPACE)",
            )
        if not isinstance(items, list) or not items:
            self.fail(
                path,
                f"expected a list of replicas (url:, space:, duplicate: or local:), got "
                f"{self.show(path, items)}",
            )
        return tuple(self.replica((*path, i), item) for i, item in enumerate(items))

    def replica(self, path: KeyPath, value: Any) -> ReplicaSpec:
        if isinstance(value, str):
            return self.replica_text(path, value)
        if not isinstance(value, dict):
            self.fail(
                path,
                f"expected a replica (url:, space:, duplicate: or local:), got "
                f"{self.show(path, value)}",
            )
        kinds = [k for k in REPLICA_KEYS if k in value]
        if len(kinds) != 1:
            found = " and ".join(repr(k) for k in kinds) or "none of them"
            self.fail(
                path,
                f"expected exactly one of url:, space:, duplicate: or local: in "
                f"each replica, found {found}",
            )
        kind = kinds[0]
        entry = self.section(path, value, REPLICA_KEYS[kind])
        concurrency = self.optional_int((*path, "concurrency"), entry.get("concurrency"), 1)
        target = (*path, kind)
        if kind == "url":
            return UrlReplica(url=self.url(target, entry["url"]), concurrency=concurrency)
        if kind == "space":
            return SpaceReplica(space=self.space(target, entry["space"]), concurrency=concurrency)
        count = self.integer((*path, "count"), entry.get("count", 1), 1)
        if kind == "duplicate":
            sleep = entry.get("sleep_timeout")
            to_id = entry.get("to_id")
            hardware = entry.get("hardware")
            return DuplicateReplica(
                space=self.space(target, entry["duplicate"]),
                count=count,
                hardware=None if hardware is None else self.text((*path, "hardware"), hardware),
                private=self.boolean((*path, "private"), entry.get("private", True)),
                sleep_timeout=None
                if sleep is None
                else self.duration((*path, "sleep_timeout"), sleep),
                to_id=None if to_id is None else self.text((*path, "to_id"), to_id),
                concurrency=concurrency,
                after=self.choice((*path, "after"), entry.get("after", "pause"), DUPLICATE_AFTER),
            )
        return self.local(path, entry, count, concurrency)

    def local(
        self, path: KeyPath, entry: dict[str, Any], count: int, concurrency: int | None
    ) -> LocalReplica:
        target = (*path, "local")
        text = self.text(target, entry["local"])
        space, revision, script = None, None, None
        if _SPACE_AT.fullmatch(text.strip()) and not text.strip().endswith(".py"):
            space, _, rev = text.strip().partition("@")
            revision = rev or None
        else:
            script = self.existing_file(target, text, "an app script")
        gpus = self.gpus((*path, "gpus"), entry.get("gpus"))
        if gpus is not None and "count" in entry:
            self.fail(
                (*path, "count"),
                "give count or gpus, not both: with gpus, the copies are the GPUs x per_gpu",
            )
        if gpus is None and "per_gpu" in entry:
            self.fail((*path, "per_gpu"), "per_gpu applies with gpus: (e.g. gpus: all)")
        if space is None and "inherit_packages" in entry:
            self.fail(
                (*path, "inherit_packages"),
                "inherit_packages applies to a Space run locally (local: owner/name) only",
            )
        python = entry.get("python")
        return LocalReplica(
            script=script,
            space=space,
            revision=revision,
            count=count,
            python=None if python is None else self.text((*path, "python"), python),
            env=self.env((*path, "env"), entry.get("env", {})),
            args=self.args((*path, "args"), entry.get("args", [])),
            concurrency=concurrency,
            ready_timeout=self.duration(
                (*path, "ready_timeout"), entry.get("ready_timeout", LOCAL_READY_TIMEOUT)
            ),
            gpus=gpus,
            per_gpu=self.integer((*path, "per_gpu"), entry.get("per_gpu", 1), 1),
            inherit_packages=self.boolean(
                (*path, "inherit_packages"), entry.get("inherit_packages", False)
            ),
        )

    def gpus(self, path: KeyPath, value: Any) -> tuple[str, ...] | str | None:
        if value is None:
            return None
        if value == ALL_GPUS:
            return ALL_GPUS
        items = value if isinstance(value, list) else [value]
        ids = []
        for i, item in enumerate(items):
            if isinstance(item, bool) or not isinstance(item, (int, str)) or str(item) == "":
                self.fail(
                    (*path, i) if isinstance(value, list) else path,
                    f"expected all, or a list of GPU indices or UUIDs like [0, 1], got "
                    f"{self.show(path, value)}",
                )
            ids.append(str(item).strip())
        if not ids:
            self.fail(path, "expected all, or at least one GPU index like [0, 1], got []")
        if len(set(ids)) != len(ids):
            self.fail(path, f"each GPU once, got {ids}; use per_gpu: N for N copies per GPU")
        return tuple(ids)

    def replica_text(self, path: KeyPath, value: str) -> ReplicaSpec:
        kind = _text_kind(value)
        if kind == "local":
            return LocalReplica(script=self.existing_file(path, value, "an app script"))
        if kind == "url":
            return UrlReplica(url=self.url(path, value))
        return SpaceReplica(space=self.space(path, value))

    def inputs(self, value: Any) -> InputsSpec:
        path: KeyPath = ("inputs",)
        if value is None:
            return InputsSpec()
        spec = self.section(path, value, INPUT_KEYS)
        sources = [k for k in SOURCES if k in spec]
        if len(sources) > 1:
            self.fail(
                (*path, sources[1]),
                f"give one source of rows, not both {sources[0]!r} and {sources[1]!r}",
            )
        source = SourceKind(sources[0]) if sources else SourceKind.NONE
        options: dict[str, Any] = {"source": source}
        if source is SourceKind.ROWS:
            options["rows"], options["row_lines"] = self.rows((*path, "rows"), spec["rows"])
        elif source is SourceKind.FILES:
            options["pattern"] = self.pattern((*path, "files"), spec["files"])
        elif source is not SourceKind.NONE:
            options["path"] = self.existing_file(
                (*path, source.value), spec[source.value], f"a {source.value} file"
            )
        for option in ("delimiter", "encoding"):
            if option in spec and source is not SourceKind.CSV:
                self.fail((*path, option), f"{option} applies to csv: inputs only")
        if "delimiter" in spec:
            options["delimiter"] = self.delimiter((*path, "delimiter"), spec["delimiter"])
        if "encoding" in spec:
            options["encoding"] = self.encoding((*path, "encoding"), spec["encoding"])
        if spec.get("map") is not None:
            options["map"] = self.mapping((*path, "map"), spec["map"], "parameter: value")
        if spec.get("matrix") is not None:
            options["matrix"] = self.matrix((*path, "matrix"), spec["matrix"], options.get("map"))
        options["limit"] = self.optional_int((*path, "limit"), spec.get("limit"), 1)
        return InputsSpec(**options)

    def rows(
        self, path: KeyPath, value: Any
    ) -> tuple[tuple[dict[str, Any], ...], tuple[int | None, ...]]:
        if not isinstance(value, list) or not value:
            self.fail(
                path,
                f"expected a list of rows like [{{text: Hello}}], got {self.show(path, value)}",
            )
        rows = tuple(
            self.mapping((*path, i), row, "parameter: value") for i, row in enumerate(value)
        )
        lines = tuple(self.doc.mark((*path, i)).line for i in range(len(value)))
        return rows, lines

    def matrix(
        self, path: KeyPath, value: Any, mapping: Mapping[str, Any] | None
    ) -> dict[str, tuple[Any, ...]]:
        table = self.mapping(path, value, "parameter: [values]")
        out = {}
        for key, values in table.items():
            if not isinstance(values, list) or not values:
                self.fail(
                    (*path, key),
                    f"expected a non-empty list of values, got {self.show((*path, key), values)}",
                )
            if mapping is not None and key in mapping:
                self.fail((*path, key), f"{key!r} is also set by inputs.map; keep one of them")
            out[key] = tuple(values)
        return out

    def run(self, value: Any) -> RunSpec:
        path: KeyPath = ("run",)
        spec = self.section(path, value or {}, RUN_KEYS)
        defaults = RunSpec()
        timeout = spec.get("timeout", defaults.timeout)
        rate = spec.get("rate")
        budget = spec.get("budget")
        return RunSpec(
            concurrency=self.integer(
                (*path, "concurrency"), spec.get("concurrency", defaults.concurrency), 1
            ),
            rate=None if rate is None else self.rate((*path, "rate"), rate),
            retries=self.integer((*path, "retries"), spec.get("retries", defaults.retries), 0),
            timeout=None
            if timeout in (None, "none")
            else self.duration((*path, "timeout"), timeout),
            retry_app_errors=self.boolean(
                (*path, "retry_app_errors"), spec.get("retry_app_errors", False)
            ),
            retry_timeouts=self.boolean(
                (*path, "retry_timeouts"), spec.get("retry_timeouts", False)
            ),
            grace=self.duration((*path, "grace"), spec.get("grace", defaults.grace)),
            share_session=self.boolean((*path, "share_session"), spec.get("share_session", False)),
            max_wait=self._max_wait(spec.get("max_wait", defaults.max_wait)),
            budget=None if budget is None else self.money((*path, "budget"), budget),
        )

    def _max_wait(self, value: Any) -> float | None:
        if value in (None, "none"):
            return None
        return self.duration(("run", "max_wait"), value)

    def output(self, value: Any, name: str) -> OutputSpec:
        path: KeyPath = ("output",)
        spec = self.section(path, value or {}, OUTPUT_KEYS)
        folder = spec.get("dir")
        directory = self.base / "runs" / name
        if folder is not None:
            directory = self.base / Path(self.text((*path, "dir"), folder)).expanduser()
        if problem := _not_a_folder(directory):
            self.fail((*path, "dir"), problem)
        export = spec.get("export", [])
        if isinstance(export, str):
            export = [export]
        if not isinstance(export, list):
            self.fail(
                (*path, "export"),
                f"expected a list of formats from {list(EXPORT_FORMATS)}"
                f", got {self.show((*path, 'export'), export)}",
            )
        for i, fmt in enumerate(export):
            if fmt not in EXPORT_FORMATS:
                self.fail(
                    (*path, "export", i),
                    f"expected one of {', '.join(EXPORT_FORMATS)}, "
                    f"got {fmt!r}{did_you_mean(str(fmt), EXPORT_FORMATS)}",
                )
        return OutputSpec(
            dir=directory,
            export=tuple(export),
            download_files=self.boolean(
                (*path, "download_files"), spec.get("download_files", True)
            ),
        )


def _not_a_folder(directory: Path) -> str | None:
    """Why the run folder cannot be made or written (checked before anything runs), or None."""
    for existing in (directory, *directory.parents):
        if existing.is_dir():
            break
        if existing.exists() or existing.is_symlink():
            what = "is a file" if existing == directory else f"cannot be made: {existing} is a file"
            return (
                f"the run folder {directory} {what}; expected a folder (or a path where one "
                "can be made): move the file away or choose another output.dir"
            )
    else:
        return None
    if not os.access(existing, os.W_OK | os.X_OK):
        return (
            f"the run folder {directory} cannot be written: no permission to write in "
            f"{existing} (or it is read-only); choose another output.dir"
        )
    return None


def _text_kind(value: str) -> str:
    """A bare replica string: `*.py` is a local script, `http(s)://` a URL, else a Space."""
    if value.endswith(".py"):
        return "local"
    return "url" if "://" in value else "space"
