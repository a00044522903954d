"""What `runner.map` (its functions are in `runner.run._map_api`) builds on: the batch as
a manifest, and each record as a `MapResult`.

`runner.map` is a batch from Python — rows in, a DataFrame out, one row per submission.
It is a manifest built in memory: the rows are written to `RUN_DIR/inputs.jsonl` (only
when they changed, so a rerun resumes fast), the keyword arguments become the
manifest's `app`, `inputs`, `run` and `output` sections, and `runner.run_async` does
the rest, exactly as `spacerun run` would: validation, keys, resume, retries,
throttling, replicas, the run folder and its report.

    out = runner.map(df, app="owner/space", endpoint="/predict",
                     map={"text": "{sentence}"}, rate="5/s", run_dir="runs/translate")
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from ..manifest import Manifest, manifest_from_data
from ..store import RecordStatus, ResultRecord, RunFolder, write_bytes_atomic

__all__ = ["MapRequest", "MapResult", "build_manifest", "local_outputs", "result_of"]

Rows = Any  # a pandas DataFrame, or an iterable of mappings (one per row)
AppArg = Union[str, Mapping[str, Any], Sequence[Mapping[str, Any]]]  # noqa: UP007


@dataclass(frozen=True, slots=True, kw_only=True)
class MapResult:
    """One finished submission, as `runner.map_iter` yields it."""

    key: str
    row: int
    status: RecordStatus
    inputs: Mapping[str, Any]
    #: By the endpoint's return labels; files as absolute local paths.
    outputs: Mapping[str, Any] | None
    error: str | None
    error_type: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class MapRequest:
    """The keyword arguments of `runner.map`, as the manifest sections they stand for."""

    app: AppArg
    endpoint: str | None = None
    map: Mapping[str, Any] | None = None
    matrix: Mapping[str, Sequence[Any]] | None = None
    run: Mapping[str, Any] | None = None
    output: Mapping[str, Any] | None = None
    run_dir: str | os.PathLike[str] | None = None
    name: str | None = None
    hf_token: str | None = None

    def folder(self) -> Path:
        """`run_dir`, or `runs/map-<digest of app, endpoint, map, matrix>`: calling
        `map` again with the same arguments resumes the same folder."""
        if self.run_dir is not None:
            return Path(self.run_dir).resolve()
        what = json.dumps(
            [_jsonable_app(self.app), self.endpoint, self.map, self.matrix],
            sort_keys=True,
            default=str,
        )
        digest = hashlib.sha256(what.encode()).hexdigest()[:10]
        return Path("runs", f"{self.name or 'map'}-{digest}").resolve()


def build_manifest(rows: Rows, request: MapRequest) -> Manifest:
    """Write `rows` to the run folder and return the manifest that runs them. Blocking."""
    root = request.folder()
    folder = RunFolder.at(root)
    folder.ensure()
    inputs_path = folder.inputs_path
    _write_if_changed(inputs_path, _jsonl(rows))
    inputs: dict[str, Any] = {"jsonl": str(inputs_path)}
    if request.map is not None:
        inputs["map"] = dict(request.map)
    if request.matrix:
        inputs["matrix"] = {k: list(v) for k, v in request.matrix.items()}
    app: dict[str, Any] = {"replicas": _replicas(request.app)}
    if request.endpoint is not None:
        app["endpoint"] = request.endpoint
    if request.hf_token is not None:
        app["hf_token"] = request.hf_token
    data = {
        "name": request.name or root.name,
        "app": app,
        "inputs": inputs,
        "run": dict(request.run or {}),
        "output": {**dict(request.output or {}), "dir": str(root)},
    }
    return manifest_from_data(data, path=folder.manifest_path, label="runner.map(...)")


def _replicas(app: AppArg) -> list[dict[str, Any]]:
    """`app` as manifest replicas: a URL, a Space id or an app script (.py), one
    replica mapping (`{"local": "app.py", "count": 2}`), or a list of them."""
    if isinstance(app, str):
        if app.endswith(".py"):
            return [{"local": str(Path(app).resolve())}]
        return [{"url": app}] if "://" in app else [{"space": app}]
    if isinstance(app, Mapping):
        return [_resolved(dict(app))]
    return [_resolved(dict(replica)) for replica in app]


def _resolved(replica: dict[str, Any]) -> dict[str, Any]:
    # A script path is the caller's (relative to the working folder), not the run folder's.
    if isinstance(replica.get("local"), (str, os.PathLike)):
        replica["local"] = str(Path(replica["local"]).resolve())
    return replica


def _jsonable_app(app: AppArg) -> Any:
    return app if isinstance(app, str) else json.loads(json.dumps(app, default=str))


def _jsonl(rows: Rows) -> bytes:
    lines = []
    for index, row in enumerate(_iter_rows(rows)):
        if not isinstance(row, Mapping):
            raise TypeError(
                f"row {index} is a {type(row).__name__}; runner.map takes a DataFrame or "
                "rows as mappings of column -> value"
            )
        clean = {str(k): _plain(v) for k, v in row.items()}
        lines.append(json.dumps(clean, ensure_ascii=False, allow_nan=False, default=_default))
    return ("\n".join(lines) + "\n").encode("utf-8") if lines else b""


def _iter_rows(rows: Rows) -> Iterable[Any]:
    to_dict = getattr(rows, "to_dict", None)
    if callable(to_dict) and hasattr(rows, "columns"):  # a DataFrame
        records: Iterable[Any] = to_dict(orient="records")
        return records
    if isinstance(rows, (str, bytes, Mapping)):
        raise TypeError("runner.map takes a DataFrame or an iterable of rows (mappings)")
    given: Iterable[Any] = rows
    return given


def _plain(value: Any) -> Any:
    """A DataFrame cell as JSON: numpy scalars as numbers, missing values as null."""
    item = getattr(value, "item", None)
    if callable(item) and type(value).__module__ == "numpy":
        value = item()
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    return value


def _default(value: object) -> object:
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    iso = getattr(value, "isoformat", None)
    if callable(iso):  # dates and timestamps
        return iso()
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # numpy arrays
        return tolist()
    raise TypeError(f"a {type(value).__name__} in the rows cannot be sent; use plain values")


def _write_if_changed(path: Path, data: bytes) -> None:
    # Rewriting identical rows would change the file's time and cost a full re-validation.
    try:
        if path.read_bytes() == data:
            return
    except FileNotFoundError:
        pass
    write_bytes_atomic(path, data)


def local_outputs(root: Path, outputs: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Outputs with file paths (relative to the run folder) made absolute."""
    if outputs is None:
        return None
    return {name: _absolute(root, value) for name, value in outputs.items()}


def _absolute(root: Path, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("files/") and (root / value).exists():
        return str(root / value)
    if isinstance(value, list):
        return [_absolute(root, v) for v in value]
    if isinstance(value, dict):
        return {k: _absolute(root, v) for k, v in value.items()}
    return value


def result_of(root: Path, record: ResultRecord) -> MapResult:
    return MapResult(
        key=record.key,
        row=record.row,
        status=record.status,
        inputs=record.inputs,
        outputs=local_outputs(root, record.outputs),
        error=record.error_message,
        error_type=record.error_type,
    )
