"""The manifest model: typed, frozen specs of the app, its replicas, inputs, run, output.

`runner.manifest.load_manifest` builds one; `Manifest.to_dict` writes it back as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs import Limits

from ._datasets import DatasetSpec, PushSpec
from ._durations import Rate, format_duration
from ._ray_spec import RaySpec, dump_ray
from ._replica_specs import ReplicaSpec
from ._secrets import Redactor, variables_in
from ._yaml import KeyPath, Mark

if TYPE_CHECKING:
    from ._notify import NotifySpec

__all__ = [
    "AppSpec",
    "InputsSpec",
    "Manifest",
    "OutputSpec",
    "RunSpec",
    "Secret",
    "SourceKind",
]


@dataclass(frozen=True, slots=True)
class Secret:
    """A value that never shows itself in a repr, a log line or an error message."""

    _value: str = field(repr=False)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppSpec:
    """Which app to call, where it runs, and the token for Hugging Face."""

    endpoint: str | None
    replicas: tuple[ReplicaSpec, ...]
    hf_token: Secret | None = None
    #: What the client accepts from the app (`app.limits`; jobs' defaults otherwise).
    limits: Limits = field(default_factory=Limits)

    @property
    def token(self) -> str | None:
        """The manifest's Hugging Face token in clear (None: not given; the environment's
        is used then), for the clients and the fleet only."""
        return self.hf_token.reveal() if self.hf_token is not None else None

    @property
    def probe_target(self) -> ReplicaSpec:
        """The replica to read the API from before the run: a URL or a Space if there is
        one, else the source Space of a duplicate (same API, nothing to create), else a
        local script (which must be started first)."""
        return min(self.replicas, key=lambda r: r.probe_rank)


class SourceKind(str, Enum):
    """Where the input rows come from."""

    ROWS = "rows"  # inline in the manifest
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"
    FILES = "files"  # one row per file matching a glob, column `path`
    DATASET = "dataset"  # a Hugging Face dataset: on the Hub, hf:// files or a local folder
    NONE = "none"  # one empty row: everything comes from `map` and `matrix`


@dataclass(frozen=True, slots=True, kw_only=True)
class InputsSpec:
    """The rows, and how they become an endpoint's parameters."""

    source: SourceKind = SourceKind.NONE
    rows: tuple[Mapping[str, Any], ...] = ()
    #: The csv / jsonl / parquet file (absolute), or None.
    path: Path | None = None
    #: The `files:` glob as written (relative to the manifest's folder unless absolute).
    pattern: str | None = None
    dataset: DatasetSpec | None = None
    map: Mapping[str, Any] | None = None
    matrix: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    limit: int | None = None
    delimiter: str = ","
    encoding: str = "utf-8"
    #: Line of each inline row in the manifest, for error messages.
    row_lines: tuple[int | None, ...] = field(default=(), repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSpec:
    """How the scheduler runs the submissions."""

    concurrency: int = 4
    rate: Rate | None = None
    retries: int = 3
    timeout: float | None = 600.0
    retry_app_errors: bool = False
    retry_timeouts: bool = False
    grace: float = 30.0
    share_session: bool = False
    #: Jobs kept waiting in each replica's own queue beyond `concurrency`, so that its
    #: slots never wait for a round trip: None sizes it per replica from the measured
    #: run time and gap; 0 turns it off; N caps it.
    queue_ahead: int | None = None
    #: Near the end, copy a straggler onto a faster free replica (the first result
    #: wins, the other is cancelled). Off for apps whose calls must not run twice.
    hedge: bool = True
    #: Longest account-level pause (a ZeroGPU quota) waited for; longer ones stop the run
    #: resumably. None: wait however long it takes.
    max_wait: float | None = 3600.0
    #: US dollars the run's paid hardware may cost; scheduling stops before it is passed.
    budget: float | None = None
    #: Seconds from the start within which the batch should be done: elastic copies are
    #: added while the backlog would otherwise take longer. None: see `runner.run`.
    deadline: float | None = None
    #: Seconds a copy of ours may hold jobs without finishing any before it is restarted.
    #: None: ten times its normal run time, and at least two minutes.
    stuck_after: float | None = None
    #: Webhooks told of the run's end, failure spikes, long pauses, the budget's stop.
    notify: NotifySpec | None = None
    #: The Ray cluster of `ray:` replicas; None: a Ray instance on this machine.
    ray: RaySpec | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputSpec:
    """Where results go."""

    dir: Path
    export: tuple[str, ...] = ()
    download_files: bool = True
    push_to_hub: PushSpec | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """A loaded, type-checked manifest. Paths in it are absolute."""

    name: str
    #: The manifest file as the user named it (a YAML, CSV, JSONL or Parquet file).
    path: Path | None
    #: The folder relative paths are read from: the manifest's own folder.
    base_dir: Path
    app: AppSpec
    inputs: InputsSpec
    run: RunSpec
    output: OutputSpec
    #: `secrets:` and `not_secret:` as written: variables secret (or not) whatever their name.
    secrets: tuple[str, ...] = ()
    not_secret: tuple[str, ...] = ()
    #: Masks the values of the secret variables the manifest used, in whatever the run
    #: writes or prints (submissions keep the real values, and keys are computed from them).
    redactor: Redactor = field(default_factory=Redactor, repr=False, compare=False)
    #: Original `${VAR}` text of interpolated values, by key path (for redacted dumps).
    templates: Mapping[KeyPath, str] = field(default_factory=dict, repr=False, compare=False)
    marks: Mapping[KeyPath, Mark] = field(default_factory=dict, repr=False, compare=False)

    @property
    def display_path(self) -> str:
        return str(self.path) if self.path is not None else "<manifest>"

    def mark(self, *key: str | int) -> Mark:
        """Where `key` (a key path such as `("inputs", "map", "audio")`) was written."""
        for end in range(len(key), -1, -1):
            found = self.marks.get(key[:end])
            if found is not None:
                return found
        return Mark(self.display_path)

    def secret_inputs(self) -> dict[str, list[str]]:
        """Each parameter whose value carries a secret (from `inputs.map`, inline rows or
        `inputs.matrix`), with the secret variables it reads."""
        secret = set(self.redactor.names)
        found: dict[str, list[str]] = {}
        for path, template in self.templates.items():
            param = _input_parameter(path)
            if param is None:
                continue
            for name in variables_in(template):
                if name in secret and name not in found.setdefault(param, []):
                    found[param].append(name)
        return {param: names for param, names in found.items() if names}

    def to_dict(self, *, redact: bool = True) -> dict[str, Any]:
        """The resolved manifest as plain data that `load_manifest` reads back.

        With `redact` (the default), a value that came from `${VAR}` is written as its
        `${VAR}` text and a literal `hf_token` is left out, so the dump holds no secret.
        """
        data = _dump(self, redact=redact)
        if redact:
            token = self.templates.get(("app", "hf_token"))
            if self.app.hf_token is not None and token is not None:
                data["app"]["hf_token"] = token
            for path, template in self.templates.items():
                _set_if_present(data, path, template)
            data = self.redactor.mask_value(data)
        if self.secrets:
            data["secrets"] = list(self.secrets)
        if self.not_secret:
            data["not_secret"] = list(self.not_secret)
        return data


def _input_parameter(path: KeyPath) -> str | None:
    """The parameter a template at `path` gives a value to, if it is one of the inputs:
    `inputs.map.P`, `inputs.rows[i].P` or `inputs.matrix.P[j]`."""
    if len(path) < 3 or path[0] != "inputs":
        return None
    section = path[1]
    if section in ("map", "matrix"):
        return str(path[2])
    if section == "rows" and len(path) >= 4:
        return str(path[3])
    return None


def _dump(manifest: Manifest, *, redact: bool) -> dict[str, Any]:
    app: dict[str, Any] = {"replicas": [_dump_replica(r) for r in manifest.app.replicas]}
    if manifest.app.endpoint is not None:
        app["endpoint"] = manifest.app.endpoint
    if manifest.app.hf_token is not None and not redact:
        app["hf_token"] = manifest.app.hf_token.reveal()
    if manifest.app.limits != Limits():
        app["limits"] = {
            f.name: getattr(manifest.app.limits, f.name) for f in fields(manifest.app.limits)
        }
    run = manifest.run
    return {
        "name": manifest.name,
        "app": app,
        "inputs": _dump_inputs(manifest.inputs),
        "run": {
            "concurrency": run.concurrency,
            "rate": None if run.rate is None else str(run.rate),
            "retries": run.retries,
            "timeout": None if run.timeout is None else format_duration(run.timeout),
            "retry_app_errors": run.retry_app_errors,
            "retry_timeouts": run.retry_timeouts,
            "grace": format_duration(run.grace),
            "share_session": run.share_session,
            "queue_ahead": "auto" if run.queue_ahead is None else run.queue_ahead,
            "hedge": run.hedge,
            "max_wait": None if run.max_wait is None else format_duration(run.max_wait),
            **({"budget": f"${run.budget:g}"} if run.budget is not None else {}),
            **({} if run.deadline is None else {"deadline": format_duration(run.deadline)}),
            **(
                {} if run.stuck_after is None else {"stuck_after": format_duration(run.stuck_after)}
            ),
            # Webhook URLs are written as their `${VAR}` text or masked, redact or not.
            **({"notify": run.notify.to_dict()} if run.notify is not None else {}),
            **({} if run.ray is None else {"ray": dump_ray(run.ray)}),
        },
        "output": {
            "dir": str(manifest.output.dir),
            "export": list(manifest.output.export),
            "download_files": manifest.output.download_files,
            **(
                {"push_to_hub": manifest.output.push_to_hub.to_dict()}
                if manifest.output.push_to_hub is not None
                else {}
            ),
        },
    }


def _dump_replica(replica: ReplicaSpec) -> dict[str, Any]:
    out = replica.to_data()
    if replica.concurrency is not None:
        out["concurrency"] = replica.concurrency
    return out


def _dump_inputs(inputs: InputsSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if inputs.source is SourceKind.ROWS:
        out["rows"] = [dict(row) for row in inputs.rows]
    elif inputs.source is SourceKind.FILES:
        out["files"] = inputs.pattern
    elif inputs.dataset is not None:
        out["dataset"] = inputs.dataset.to_dict()
    elif inputs.path is not None:
        out[inputs.source.value] = str(inputs.path)
    if inputs.source is SourceKind.CSV:
        out["delimiter"] = inputs.delimiter
        out["encoding"] = inputs.encoding
    if inputs.map is not None:
        out["map"] = dict(inputs.map)
    if inputs.matrix:
        out["matrix"] = {k: list(v) for k, v in inputs.matrix.items()}
    if inputs.limit is not None:
        out["limit"] = inputs.limit
    return out


def _set_if_present(data: Any, path: KeyPath, value: Any) -> None:
    node = data
    for step in path[:-1]:
        if not _holds(node, step):
            return
        node = node[step]
    if path and _holds(node, path[-1]):
        node[path[-1]] = value


def _holds(node: Any, step: str | int) -> bool:
    if isinstance(node, dict):
        return step in node
    return isinstance(node, list) and isinstance(step, int) and step < len(node)
