"""The map of a run folder (`RunFolder`: every path in it is one of its properties) and
the atomic writes of its small files.

```
runs/<name>/
  manifest.yaml        the manifest as resolved for this run (secrets left out or masked)
  results.jsonl        one line per finished submission, appended as it finishes
  results.jsonl.torn   bytes of torn last lines cut away on resume, kept for the user
  files/<key>/...      output files downloaded for that submission
  summary.json         counts, failures by cause, throughput, replicas, wall time
  report.html          what a person looks at: timeline, latency, failures, gallery
  export.csv           (and .parquet / .jsonl) when output.export asks for them
  logs/                the logs of local replicas (and of a local Space's pip install)
  spaces.json          the commit of each Space run locally, so a resume runs the same code
  inputs.jsonl         the rows `runner.map` was given (a map's folder only)
  cache/               validation stamp, keys and results index for fast resume (safe to delete)
```

Small files (manifest, summary) are replaced atomically: written to a temporary
file in the same folder, flushed to disk, then renamed over the old one, so a
reader sees the old or the new file, never half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Union

from ._errors import folder_errors

__all__ = [
    "RunDir",
    "RunFolder",
    "read_manifest",
    "read_summary",
    "safe_dir_name",
    "write_bytes_atomic",
    "write_manifest",
    "write_summary",
]

RunDir = Union[str, "os.PathLike[str]", "RunFolder"]
"""A run folder given as a path or as a `RunFolder`."""

# A key is used as a folder name as-is when it is plainly safe; anything else is
# mapped to a readable stem plus a hash so that two keys never share a folder.
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{p}{i}" for p in ("COM", "LPT") for i in range(10)
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFolder:
    """The paths of one run folder. Building one does no I/O.

    Usage: `folder = RunFolder(root=Path("runs/demo")); folder.files_dir(key)`.
    """

    root: Path

    @classmethod
    def at(cls, run_dir: RunDir) -> RunFolder:
        """The run folder at `run_dir` (a path or an existing `RunFolder`)."""
        if isinstance(run_dir, RunFolder):
            return run_dir
        return cls(root=Path(run_dir))

    @property
    def manifest_path(self) -> Path:
        """`manifest.yaml`: the manifest as resolved for this run, without its secrets."""
        return self.root / "manifest.yaml"

    @property
    def results_path(self) -> Path:
        """`results.jsonl`: one record per finished submission, appended as it finishes."""
        return self.root / "results.jsonl"

    @property
    def torn_path(self) -> Path:
        """`results.jsonl.torn`: torn last lines cut away on opening, kept for the user."""
        return self.root / "results.jsonl.torn"

    @property
    def files_root(self) -> Path:
        """`files/`: the output files downloaded, a folder per submission (`files_dir`)."""
        return self.root / "files"

    @property
    def summary_path(self) -> Path:
        """`summary.json`: counts, failures by cause, throughput, replicas, wall time."""
        return self.root / "summary.json"

    @property
    def report_path(self) -> Path:
        """`report.html`: the run's report, rewritten while it goes and when it ends."""
        return self.root / "report.html"

    def export_path(self, fmt: str) -> Path:
        """`export.<fmt>`: the results as a table (csv, parquet, jsonl)."""
        return self.root / f"export.{fmt}"

    @property
    def logs_dir(self) -> Path:
        """`logs/`: the logs of local replicas and of a local Space's install."""
        return self.root / "logs"

    @property
    def spaces_path(self) -> Path:
        """`spaces.json`: the commit of each Space run locally, so a resume runs it again."""
        return self.root / "spaces.json"

    @property
    def inputs_path(self) -> Path:
        """`inputs.jsonl`: the rows `runner.map` was given (only in a map's folder)."""
        return self.root / "inputs.jsonl"

    @property
    def cache_dir(self) -> Path:
        """`cache/`: what makes a resume fast (safe to delete: it is made again)."""
        return self.root / "cache"

    @property
    def stamp_path(self) -> Path:
        """`cache/validation.json`: what the rows were last validated against."""
        return self.cache_dir / "validation.json"

    @property
    def keys_path(self) -> Path:
        """`cache/keys.txt`: the key of each submission, in order, for that stamp."""
        return self.cache_dir / "keys.txt"

    @property
    def index_path(self) -> Path:
        """`cache/index.bin`: the results file's index, saved when it was last closed."""
        return self.cache_dir / "index.bin"

    def files_dir(self, key: str) -> Path:
        """The folder for the output files of submission `key` (not created).

        Keys that are not plain file names (slashes, dots only, odd characters,
        reserved device names) are mapped to a safe name with a hash suffix, so the
        folder is always directly under `files/`.
        """
        return self.files_root / safe_dir_name(key)

    def relative(self, path: str | os.PathLike[str]) -> str:
        """`path` relative to the run folder, with forward slashes, as results store it.

        Raises ValueError if `path` is not inside the run folder.
        """
        root = self.root.resolve()
        resolved = Path(path).resolve()
        if not resolved.is_relative_to(root):
            raise ValueError(f"{path} is outside the run folder {self.root}")
        return resolved.relative_to(root).as_posix()

    def ensure(self) -> None:
        """Create the run folder and its `files/` folder if missing."""
        with folder_errors("create the run folder", self.files_root):
            self.files_root.mkdir(parents=True, exist_ok=True)

    def set_aside(self) -> Path | None:
        """Rename a non-empty run folder to `<name>.before-<time>` (what `--restart`
        does, so nothing is ever deleted); returns the new name, None if nothing moved."""
        root = self.root
        if not (root.exists() and any(root.iterdir())):
            return None
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        aside = root.with_name(f"{root.name}.before-{stamp}")
        with folder_errors("move aside (--restart) the run folder", root):
            root.rename(aside)
        return aside

    def export_is_current(self, fmt: str) -> bool:
        """Whether `export.<fmt>` was written after the last change to the results."""
        target, results = self.export_path(fmt), self.results_path
        return (
            target.exists()
            and results.exists()
            and target.stat().st_mtime_ns >= results.stat().st_mtime_ns
        )


def safe_dir_name(key: str) -> str:
    """A single, portable path component for `key`, distinct for distinct keys."""
    reserved = key.split(".")[0].upper() in _WINDOWS_RESERVED
    if _SAFE_KEY.fullmatch(key) and not key.endswith(".") and not reserved:
        return key
    stem = _UNSAFE_CHARS.sub("_", key).strip("._")[:60] or "key"
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    return f"{stem}-{digest}"


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes | Iterable[bytes]) -> None:
    """Replace the file at `path` with `data` (or its parts, in order) atomically (temp
    file, fsync, rename).

    The file is fsynced before the rename so that a crash right after it cannot
    leave an empty file where the old one was.
    """
    target = Path(path)
    with folder_errors("write", target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                for part in (data,) if isinstance(data, bytes) else data:
                    handle.write(part)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def write_manifest(run_dir: RunDir, manifest: Mapping[str, Any]) -> Path:
    """Write the resolved manifest as `manifest.yaml`, atomically; returns its path.

    The caller must have removed secrets (tokens, expanded `${ENV}` values) first:
    this file is meant to be shared with the results.
    """
    import yaml  # here: `spacerun status` reads a run folder without the manifest

    path = RunFolder.at(run_dir).manifest_path
    text = yaml.safe_dump(dict(manifest), sort_keys=False, allow_unicode=True)
    write_bytes_atomic(path, text.encode("utf-8"))
    return path


def read_manifest(run_dir: RunDir) -> dict[str, Any] | None:
    """The manifest stored in the run folder, or None if there is none."""
    path = RunFolder.at(run_dir).manifest_path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    import yaml

    data = yaml.safe_load(text)
    return data if isinstance(data, dict) else None


def write_summary(run_dir: RunDir, summary: Mapping[str, Any]) -> Path:
    """Write `summary.json` atomically; returns its path.

    `read_status` reads an integer `total` (the number of submissions of the run)
    from it to tell whether the run is complete.
    """
    path = RunFolder.at(run_dir).summary_path
    text = json.dumps(dict(summary), indent=2, ensure_ascii=False, default=_json_default)
    write_bytes_atomic(path, (text + "\n").encode("utf-8"))
    return path


def read_summary(run_dir: RunDir) -> dict[str, Any] | None:
    """The contents of `summary.json`, or None if it is missing or unreadable."""
    path = RunFolder.at(run_dir).summary_path
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _json_default(value: object) -> object:
    # Paths appear in summaries (run folder, manifest); store them as text.
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
