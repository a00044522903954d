"""Input rows from a Hugging Face dataset (`inputs.dataset`), streamed through `datasets`.

`datasets` does the reading: it finds a Hub repo's configs, splits and data files (the
README's `configs:`, the Hub's folder layout), reads Parquet, CSV and JSONL through
`HfFileSystem` a block at a time (`streaming=True`: nothing is downloaded whole before the
first row), keeps the typed features, and opens `save_to_disk` folders memory-mapped.
What is written here is what it does not do for a batch that resumes:

* the revision read is pinned in the run folder (`dataset.json`): a Hub dataset's commit
  id, or a local folder's listing (names, sizes, times), so a resume reads the same rows
  after the owner pushed, and a local folder that changed is said, not mixed in;
  `--restart` moves the run folder aside and so reads the newest;
* Audio, Image and Video cells are read undecoded (`decode=False`: the bytes as stored)
  and become files in the run folder's `media/` when their row is sent, not when it is
  read (`runner.inputs._media`).

The Hub read is the run's `hub_endpoint` (`reading_from_hub`, the endpoint the push uses
too), else `HF_ENDPOINT`, else huggingface.co.

The paths are `RunFolder.dataset_pin_path` and `RunFolder.media_root`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ManifestError
from ..manifest import DatasetSpec, Manifest
from ..store import RunFolder
from ._media import MediaCache, is_media_cell, media_columns
from ._sources import SourceRow

if TYPE_CHECKING:
    from datasets import IterableDataset

__all__ = ["dataset_rows", "reading_from_hub", "require_datasets"]

_BATCH_ROWS = 1000
_FORMATS = {".parquet": "parquet", ".csv": "csv", ".jsonl": "json", ".json": "json"}

logger = logging.getLogger(__name__)

# A context variable, not an argument: the rows are read deep inside validation and the
# run's submissions (threads and tasks started within `reading_from_hub` inherit it).
_HUB_ENDPOINT: ContextVar[str | None] = ContextVar("spacerun_hub_endpoint", default=None)


@contextlib.contextmanager
def reading_from_hub(endpoint: str | None) -> Iterator[None]:
    """Within this block (and the threads and tasks it starts), `inputs.dataset` is read
    from the Hub at `endpoint`; None: `HF_ENDPOINT`, else huggingface.co."""
    token = _HUB_ENDPOINT.set(endpoint.rstrip("/") if endpoint else None)
    try:
        yield
    finally:
        _HUB_ENDPOINT.reset(token)


def require_datasets(what: str) -> Any:
    """The `datasets` module, or a ManifestError naming the extra that brings it."""
    try:
        import datasets
    except ImportError:
        raise ManifestError(
            f"{what} needs the `datasets` package, which spacerun does not install by "
            "default: pip install 'spacerun[datasets]'"
        ) from None
    return datasets


def dataset_rows(manifest: Manifest, skip: int) -> Iterator[SourceRow]:
    """The dataset's rows from row `skip` on, media cells as `MediaFile`s of the run folder."""
    spec = manifest.inputs.dataset
    assert spec is not None
    require_datasets("inputs.dataset")
    token = manifest.app.hf_token.reveal() if manifest.app.hf_token is not None else None
    folder = RunFolder(root=manifest.output.dir)
    hub = _Hub(_HUB_ENDPOINT.get(), token)
    revision = _pinned_revision(spec, folder, hub)
    stream = _open(spec, revision, hub)
    media = media_columns(stream)
    for name, kind in media.items():
        stream = stream.cast_column(name, _undecoded(kind))
    cache = MediaCache(folder.media_root)
    label = spec.name if spec.kind != "local" else Path(spec.name).name
    rows = stream.skip(skip) if skip else stream
    for index, example in enumerate(_hub_errors(spec, _examples(rows)), skip):
        for name, kind in media.items():
            cell = example.get(name)
            if cell is not None and is_media_cell(cell):
                example[name] = cache.file_for(cell, kind)
        yield SourceRow(index, label, None, example)


def _examples(stream: Any) -> Iterator[dict[str, Any]]:
    """The rows one by one, taken from batches: `datasets` builds a batch as columns five
    times faster than it yields rows one at a time (measured, 20,000 rows)."""
    for batch in stream.iter(batch_size=_BATCH_ROWS):
        names = list(batch)
        for values in zip(*batch.values(), strict=True):
            yield dict(zip(names, values, strict=True))


def _undecoded(kind: str) -> Any:
    import datasets

    feature: Any = getattr(datasets, kind)
    return feature(decode=False)


# -- the revision ---------------------------------------------------------------------


def _pinned_revision(spec: DatasetSpec, folder: RunFolder, hub: _Hub) -> str:
    """The revision to read: the one pinned for this run folder, else the newest (pinned)."""
    pin = folder.dataset_pin_path
    stored = _read_pin(pin)
    current = None
    if stored is not None and stored.get("dataset") == spec.to_dict():
        if spec.kind != "local":
            return str(stored["revision"])
        current = _folder_fingerprint(Path(spec.name))
        if current != stored["revision"]:
            raise ManifestError(
                f"the dataset folder {spec.name} changed since this run started (its files "
                f"differ from those pinned in {pin}); put it back as it was, or run with "
                "--restart to read it anew"
            )
        return current
    results = folder.results_path
    if stored is None and results.exists() and results.stat().st_size > 0:
        logger.warning(
            "%s has results but no pinned dataset revision: reading the newest, which may "
            "differ from what the earlier rows were read from",
            folder.root,
        )
    revision = current or _resolve(spec, hub)
    record = {"dataset": spec.to_dict(), "revision": revision}
    pin.parent.mkdir(parents=True, exist_ok=True)
    tmp = pin.with_name(f".{pin.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, pin)
    return revision


def _read_pin(pin: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(pin.read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and "revision" in data else None


def _resolve(spec: DatasetSpec, hub: _Hub) -> str:
    """A Hub dataset's commit id for the revision asked for; a local folder's listing."""
    if spec.kind == "local":
        return _folder_fingerprint(Path(spec.name))
    from huggingface_hub import HfApi

    repo, revision = _repo_and_revision(spec)
    with _hub_errors_for(spec):
        info = HfApi(endpoint=hub.endpoint, token=hub.token).dataset_info(repo, revision=revision)
    assert info.sha is not None
    return info.sha


def _repo_and_revision(spec: DatasetSpec) -> tuple[str, str | None]:
    if spec.kind == "hub":
        return spec.name, spec.revision
    owner, name = spec.name.removeprefix("hf://datasets/").split("/")[:2]
    name, _, revision = name.partition("@")
    return f"{owner}/{name}", revision or spec.revision


def _folder_fingerprint(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        stat = path.stat()
        entry = f"{path.relative_to(folder).as_posix()}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
        digest.update(entry.encode())
    return "local-" + digest.hexdigest()[:32]


# -- opening --------------------------------------------------------------------------


class _Hub:
    """Where and as whom a Hub dataset is read (`endpoint` None: `datasets`' own)."""

    def __init__(self, endpoint: str | None, token: str | None) -> None:
        self.endpoint, self.token = endpoint, token

    def options(self) -> dict[str, Any]:
        """`load_dataset`'s arguments for reading: the files of a streamed dataset are
        opened through `storage_options["hf"]`, which takes an endpoint."""
        options: dict[str, Any] = {"streaming": True, "token": self.token}
        if self.endpoint is not None:
            options["storage_options"] = {"hf": {"endpoint": self.endpoint, "token": self.token}}
        return options

    @contextlib.contextmanager
    def finding(self) -> Iterator[None]:
        """While a dataset is opened: `datasets` finds its card, configs and files through
        `datasets.config.HF_ENDPOINT`, a module global set from HF_ENDPOINT when it is
        imported, which no argument of `load_dataset` overrides (load.py and data_files.py
        build their HfApi and HfFileSystem from it). So it is set for the opening and put
        back; another thread opening a dataset at the same moment would see it too."""
        if self.endpoint is None:
            yield
            return
        from datasets import config

        saved = config.HF_ENDPOINT, config.HUB_DATASETS_URL
        config.HF_ENDPOINT = self.endpoint
        config.HUB_DATASETS_URL = self.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"
        try:
            yield
        finally:
            config.HF_ENDPOINT, config.HUB_DATASETS_URL = saved


def _open(spec: DatasetSpec, revision: str, hub: _Hub) -> IterableDataset:
    import datasets

    with _hub_errors_for(spec), hub.finding():
        if spec.kind == "hf_path":
            repo, _ = _repo_and_revision(spec)
            rest = spec.name.removeprefix("hf://datasets/").split("/", 2)[2]
            pinned = f"hf://datasets/{repo}@{revision}/{rest}"
            builder = _FORMATS.get(Path(rest).suffix.lower())
            if builder is None:
                raise ManifestError(
                    f"inputs.dataset: {spec.name} names no Parquet, CSV or JSONL files "
                    f"(by their extension: {', '.join(_FORMATS)})"
                )
            data = datasets.load_dataset(builder, data_files=pinned, split="train", **hub.options())
        elif spec.kind == "local" and _saved_to_disk(Path(spec.name)):
            saved = datasets.load_from_disk(spec.name)
            data = _split(spec, saved).to_iterable_dataset()
        else:
            name = spec.name
            options = hub.options()
            if spec.kind == "hub":
                options["revision"] = revision
            data = _split(spec, datasets.load_dataset(name, spec.config, **options))
    return data


def _saved_to_disk(folder: Path) -> bool:
    return (folder / "dataset_info.json").exists() or (folder / "dataset_dict.json").exists()


def _split(spec: DatasetSpec, loaded: Any) -> Any:
    """The split asked for (or the only one, or `train`) of a dataset dict."""
    if not isinstance(loaded, dict):
        return loaded
    names = list(loaded)
    name = spec.split or ("train" if "train" in names or len(names) != 1 else names[0])
    if name not in loaded:
        raise ManifestError(
            f"inputs.dataset: {spec.name} has no split {name!r}; its splits are "
            f"{', '.join(names)} (set inputs.dataset.split)"
        )
    return loaded[name]


class _hub_errors_for:
    """Turns the Hub's answers (missing, private, gated, no such revision) into a
    ManifestError saying what to do."""

    def __init__(self, spec: DatasetSpec) -> None:
        self.spec = spec

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and (problem := _hub_problem(self.spec, exc)) is not None:
            raise ManifestError(problem) from None


def _hub_errors(spec: DatasetSpec, rows: Any) -> Iterator[dict[str, Any]]:
    with _hub_errors_for(spec):
        yield from rows


def _hub_problem(spec: DatasetSpec, exc: BaseException) -> str | None:
    from huggingface_hub import errors

    name = spec.name
    chain = [exc]
    while (cause := chain[-1].__cause__ or chain[-1].__context__) is not None and len(chain) < 8:
        chain.append(cause)  # `datasets` wraps the Hub's error in its own
    if any(isinstance(e, errors.GatedRepoError) for e in chain) or "gated dataset" in str(exc):
        return (
            f"inputs.dataset: {name} is gated: ask for access on its page on the Hub, then "
            "give a token of the account that has it (app.hf_token or HF_TOKEN)"
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return f"inputs.dataset: {name} has no revision {spec.revision!r} (a branch, tag or commit)"
    if isinstance(exc, errors.RepositoryNotFoundError):
        return (
            f"inputs.dataset: no dataset {name} on the Hub, or it is private and the token "
            "given (app.hf_token or HF_TOKEN) may not read it"
        )
    if isinstance(exc, FileNotFoundError) and spec.kind != "local":
        return f"inputs.dataset: {name}: {exc}"
    return None
