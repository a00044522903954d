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

from ._datasets import DatasetFields
from ._fields import did_you_mean
from ._model import (
    AppSpec,
    InputsSpec,
    Manifest,
    OutputSpec,
    RunSpec,
    Secret,
    SourceKind,
)
from ._notify import NotifyFields
from ._ray_spec import RaySpec
from ._replicas import ReplicaFields, text_kind
from ._secrets import Redactor, secret_names, variables_in
from ._yaml import Document, KeyPath

__all__ = ["parse_document"]

TOP_KEYS = ("name", "app", "inputs", "run", "output", "secrets", "not_secret")
APP_KEYS = ("endpoint", "replicas", "hf_token", "url", "space", "limits")
LIMIT_SIZES = ("max_message_bytes", "max_json_bytes", "max_download_bytes")
LIMIT_TIMES = ("connect_timeout", "read_timeout")
SOURCES = ("rows", "csv", "jsonl", "parquet", "files", "dataset")
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
    "queue_ahead",
    "hedge",
    "max_wait",
    "budget",
    "deadline",
    "stuck_after",
    "notify",
    "ray",
)
RAY_KEYS = ("address", "placement_timeout")
OUTPUT_KEYS = ("dir", "export", "download_files", "push_to_hub")
EXPORT_FORMATS = ("csv", "parquet", "jsonl")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: `owner/name` or `owner/name@revision`: a Space to run locally.
_MISSING = object()


def parse_document(
    doc: Document,
    *,
    manifest_path: Path,
    templates: dict[KeyPath, str],
    variables: Mapping[str, str] | None = None,
) -> Manifest:
    """`variables`: each `${VAR}` taken from the environment, with its value."""
    return _Parser(doc, manifest_path, templates).manifest(variables or {})


class _Parser(ReplicaFields, NotifyFields, DatasetFields):
    """One section a method: checks its keys, reads each value, builds its spec."""

    # -- sections ------------------------------------------------------------------------

    def manifest(self, variables: Mapping[str, str]) -> Manifest:
        top = self.section((), self.doc.data, TOP_KEYS)
        listed = self.variable_names("secrets", top.get("secrets"))
        not_secret = self.variable_names("not_secret", top.get("not_secret"))
        for index, both in enumerate(not_secret):
            if both in listed:
                self.fail(
                    ("not_secret", index),
                    f"{both} is listed in secrets: too; keep it in one of the two lists",
                )
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
            secrets=listed,
            not_secret=not_secret,
            redactor=self.redactor(variables, listed, not_secret),
            templates=dict(self.templates),
            marks=dict(self.doc.marks),
        )

    def variable_names(self, key: str, value: Any) -> tuple[str, ...]:
        """`secrets:` / `not_secret:`: a list of environment variable names."""
        if value is None:
            return ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            self.fail(
                (key,),
                f"expected a list of variable names like [MY_API_KEY], got "
                f"{self.show((key,), value)}",
            )
        for index, item in enumerate(value):
            if not isinstance(item, str) or not _VARIABLE_NAME.fullmatch(item):
                self.fail(
                    (key, index),
                    f"expected a variable name (letters, digits, '_'; no '$' or braces), "
                    f"got {self.show((key, index), item)}",
                )
        return tuple(value)

    def redactor(
        self, variables: Mapping[str, str], listed: tuple[str, ...], not_secret: tuple[str, ...]
    ) -> Redactor:
        """The secret variables among those the manifest took from the environment; the
        ones `app.hf_token` reads are secret whatever their name."""
        names = secret_names(variables, listed=listed, not_secret=not_secret)
        token = self.templates.get(("app", "hf_token"))
        if token is not None:
            names.update(n for n in variables_in(token) if n in variables)
        return Redactor({name: variables[name] for name in sorted(names)})

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
                "(url:, space:, duplicate:, local: or ray:), or pass --app URL_OR_SPACE",
            )
        if isinstance(value, str):
            self.move_template(("app",), ("app", "replicas", 0, text_kind(value)))
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
        elif source is SourceKind.DATASET:
            options["dataset"] = self.dataset((*path, "dataset"), spec["dataset"])
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

    def _queue_ahead(self, value: Any) -> int | None:
        """`auto` (None: sized per replica from its measured pace), or at most N (0: off)."""
        if value == "auto":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.fail(
                ("run", "queue_ahead"),
                "expected `auto` or a whole number of at least 0 (0 turns queueing ahead "
                f"off), got {self.show(('run', 'queue_ahead'), value)}",
            )
        return value

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
            queue_ahead=self._queue_ahead(spec.get("queue_ahead", "auto")),
            hedge=self.boolean((*path, "hedge"), spec.get("hedge", defaults.hedge)),
            max_wait=self._max_wait(spec.get("max_wait", defaults.max_wait)),
            budget=None if budget is None else self.money((*path, "budget"), budget),
            deadline=None
            if spec.get("deadline") is None
            else self.duration((*path, "deadline"), spec["deadline"]),
            stuck_after=None
            if spec.get("stuck_after") is None
            else self.duration((*path, "stuck_after"), spec["stuck_after"]),
            notify=None
            if spec.get("notify") is None
            else self.notify((*path, "notify"), spec["notify"]),
            ray=None if spec.get("ray") is None else self.ray((*path, "ray"), spec["ray"]),
        )

    def ray(self, path: KeyPath, value: Any) -> RaySpec:
        spec = self.section(path, value, RAY_KEYS)
        address = spec.get("address")
        timeout = spec.get("placement_timeout", RaySpec().placement_timeout)
        return RaySpec(
            address=None if address is None else self.text((*path, "address"), address),
            placement_timeout=self.duration((*path, "placement_timeout"), timeout),
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
            push_to_hub=None
            if spec.get("push_to_hub") is None
            else self.push_to_hub((*path, "push_to_hub"), spec["push_to_hub"]),
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
