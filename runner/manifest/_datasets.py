"""`inputs.dataset` and `output.push_to_hub`: a Hugging Face dataset in, one out.

    inputs:
      dataset: owner/name                    # or {name: owner/name, config, split, revision}
      dataset: hf://datasets/owner/name/data/*.csv
      dataset: ./saved                       # save_to_disk, or files in the Hub's layout
    output:
      push_to_hub: me/results                # or {repo, private, every, columns}

A name that is a folder next to the manifest is read as that folder (as
`datasets.load_dataset` does); any other `owner/name` is a Hub repo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._durations import format_duration
from ._fields import Fields
from ._yaml import KeyPath

__all__ = ["DatasetFields", "DatasetSpec", "PushSpec"]

DATASET_KEYS = ("name", "config", "split", "revision")
PUSH_KEYS = ("repo", "private", "every", "columns")
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")
_ROWS = re.compile(r"(\d+)\s*rows?", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetSpec:
    """`inputs.dataset`, as read by `runner.inputs._dataset`.

    `name` is a Hub repo `owner/name`, an `hf://datasets/owner/name[@rev]/path` (a file or
    a glob of Parquet, CSV or JSONL files), or a local folder (absolute)."""

    name: str
    config: str | None = None
    split: str | None = None
    #: A branch, tag or commit; None: the main branch. Pinned to a commit for the run.
    revision: str | None = None

    @property
    def kind(self) -> str:
        """ "hub", "hf_path" or "local"."""
        if self.name.startswith("hf://"):
            return "hf_path"
        return "local" if Path(self.name).is_absolute() else "hub"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        for option in ("config", "split", "revision"):
            if getattr(self, option) is not None:
                out[option] = getattr(self, option)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PushSpec:
    """`output.push_to_hub`: the results pushed as a dataset repo (`runner.push`)."""

    repo: str
    private: bool = True
    #: Push while the run goes on, every this many new results (None: not by count) ...
    every_rows: int | None = None
    #: ... or every this many seconds (None: not by time). Always at the end of a run.
    every_seconds: float | None = None
    #: The input parameters pushed as columns; None: all of them.
    columns: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"repo": self.repo, "private": self.private}
        every = [
            *([f"{self.every_rows} rows"] if self.every_rows is not None else []),
            *([format_duration(self.every_seconds)] if self.every_seconds is not None else []),
        ]
        if every:
            out["every"] = every
        if self.columns is not None:
            out["columns"] = list(self.columns)
        return out


class DatasetFields(Fields):
    """Reads `inputs.dataset` and `output.push_to_hub` (a mixin of the manifest's parser)."""

    def dataset(self, path: KeyPath, value: Any) -> DatasetSpec:
        if isinstance(value, str):
            value = {"name": value}
            self.move_template(path, (*path, "name"))
        spec = self.section(path, value, DATASET_KEYS)
        if spec.get("name") is None:
            self.fail(
                path, "expected the dataset's name: owner/name, hf://datasets/... or a folder"
            )
        name = self.text((*path, "name"), spec["name"]).strip()
        options = {
            k: self.text((*path, k), spec[k]) for k in DATASET_KEYS[1:] if spec.get(k) is not None
        }
        if name.startswith("hf://"):
            if not name.startswith("hf://datasets/") or name.count("/") < 4:
                self.fail(
                    (*path, "name"),
                    f"expected hf://datasets/owner/name/path/to/files, got {name!r}",
                )
            return DatasetSpec(name=name, **options)
        local = (self.base / Path(name).expanduser()).resolve()
        if local.is_dir():
            return DatasetSpec(name=str(local), **options)
        if name.startswith((".", "/", "~")) or not _REPO_ID.fullmatch(name):
            self.fail(
                (*path, "name"),
                f"{name!r} is neither a folder (looked in {self.base}) nor a Hub dataset id "
                "like owner/name; for files on the Hub use hf://datasets/owner/name/...",
            )
        return DatasetSpec(name=name, **options)

    def push_to_hub(self, path: KeyPath, value: Any) -> PushSpec:
        if isinstance(value, str):
            value = {"repo": value}
        spec = self.section(path, value, PUSH_KEYS)
        repo = self.text((*path, "repo"), spec.get("repo"))
        if not _REPO_ID.fullmatch(repo):
            self.fail(
                (*path, "repo"), f"expected a dataset id like your-name/results, got {repo!r}"
            )
        rows, seconds = self._every((*path, "every"), spec.get("every"))
        columns = spec.get("columns")
        if columns is not None:
            if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
                self.fail((*path, "columns"), "expected a list of input parameter names")
            columns = tuple(columns)
        return PushSpec(
            repo=repo,
            private=self.boolean((*path, "private"), spec.get("private", True)),
            every_rows=rows,
            every_seconds=seconds,
            columns=columns,
        )

    def _every(self, path: KeyPath, value: Any) -> tuple[int | None, float | None]:
        """`every: 500` or `500 rows` (results), `10m` (a duration), or a list of both."""
        rows: int | None = None
        seconds: float | None = None
        for item in value if isinstance(value, list) else [] if value is None else [value]:
            if isinstance(item, int) and not isinstance(item, bool):
                rows = self.integer(path, item, 1)
            elif isinstance(item, str) and (match := _ROWS.fullmatch(item.strip())):
                rows = self.integer(path, int(match.group(1)), 1)
            else:
                seconds = self.duration(path, item)  # refuses 0 and less
        return rows, seconds
