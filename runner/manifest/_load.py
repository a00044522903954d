"""Loading a manifest: YAML, or a CSV / JSONL / Parquet file of rows.

    manifest = load_manifest("transcribe.yaml", overrides=["run.concurrency=8"])
    manifest = load_manifest("rows.csv", app="http://127.0.0.1:7860", endpoint="/predict")

Loading never touches the network: it parses, interpolates `${VAR}`, applies command-line
overrides, and checks every key's type and every input path. Any mistake raises a
`ManifestError` naming the file, line, column and key, and saying what is expected.
Checking the rows against the app's API is `runner.inputs.validate_submissions`'s job.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ManifestError
from ._model import Manifest
from ._parse import parse_document
from ._yaml import Document, Mark, apply_override, interpolate, load_yaml

__all__ = ["load_manifest", "manifest_from_data"]

DATA_SUFFIXES = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".parquet": "parquet"}


def load_manifest(
    path: str | os.PathLike[str],
    *,
    app: str | None = None,
    endpoint: str | None = None,
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> Manifest:
    """Load and check a manifest: YAML, or a CSV / JSONL / Parquet file of rows.

    `app` (a URL, a Space id `owner/name`, or an app script `*.py`) replaces the manifest's
    replicas and `endpoint` its endpoint, like `--app` / `--endpoint`; each of `overrides`
    is a `dotted.key=value` (value read as YAML), like `--set`. `${VAR}` comes from
    `environ` (default `os.environ`). Raises `ManifestError` on any mistake.
    """
    file = Path(path)
    label = str(path)
    if not file.is_file():
        raise ManifestError(
            "no such file; expected a manifest (.yaml) or a file of rows (.csv, .jsonl, .parquet)",
            file=label,
        )
    kind = DATA_SUFFIXES.get(file.suffix.lower())
    doc = _rows_document(file, label, kind) if kind else _yaml_document(file, label)
    if app is not None:
        _override_app(doc, app)
    if endpoint is not None:
        apply_override(doc, f"app.endpoint={endpoint}", source="--endpoint")
        doc.data["app"]["endpoint"] = endpoint  # verbatim, not read as YAML
    for assignment in overrides:
        apply_override(doc, assignment)
    used: dict[str, str] = {}
    templates = interpolate(doc, environ, used=used)
    return parse_document(doc, manifest_path=file, templates=templates, variables=used)


def manifest_from_data(data: Mapping[str, Any], *, path: Path, label: str) -> Manifest:
    """A manifest from plain data shaped as a YAML manifest (what `runner.map` builds),
    checked as `load_manifest` checks a file; `path` stands for its file (relative paths
    are read from its folder) and `label` names it in errors. Raises `ManifestError`."""
    doc = Document(data=dict(data), marks={(): Mark(label)}, file=label)
    return parse_document(doc, manifest_path=path, templates={})


def _yaml_document(file: Path, label: str) -> Document:
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read the manifest: {exc}", file=label) from None
    doc = load_yaml(text, file=label)
    if doc.data is None:
        raise ManifestError("the manifest is empty; expected at least app: and inputs:", file=label)
    if not isinstance(doc.data, dict):
        raise ManifestError(
            f"expected a mapping of keys (name, app, inputs, run, output) at the top, got "
            f"{_kind(doc.data)}",
            file=label,
            line=1,
        )
    return doc


def _rows_document(file: Path, label: str, kind: str) -> Document:
    """A CSV (or JSONL / Parquet) file as a manifest: its rows are the inputs."""
    inputs: dict[str, Any] = {kind: file.name}
    if file.suffix.lower() == ".tsv":
        inputs["delimiter"] = "\t"
    data = {"name": file.stem, "app": {}, "inputs": inputs}
    return Document(data=data, marks={(): Mark(label)}, file=label)


def _override_app(doc: Document, target: str) -> None:
    if not isinstance(doc.data.get("app"), dict):
        doc.data["app"] = {}
    kind = "local" if target.endswith(".py") else "url" if "://" in target else "space"
    if kind == "local" and Path(target).is_file():
        # A path typed on the command line is the shell's; else the manifest's folder's.
        target = str(Path(target).resolve())
    doc.data["app"]["replicas"] = [{kind: target}]
    doc.marks[("app", "replicas")] = Mark("--app")
    doc.marks[("app", "replicas", 0)] = Mark("--app")
    doc.marks[("app", "replicas", 0, kind)] = Mark("--app")
    for stale in [p for p in doc.marks if p[:3] == ("app", "replicas", 0) and len(p) > 4]:
        del doc.marks[stale]


def _kind(value: Any) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__
    )
