"""Fast resume: a validation stamp and a per-submission key cache in the run folder.

Resuming used to re-validate every row and re-expand every finished row (coercion and a
SHA-256 per submission, file contents included) before the first job left: about 40 s
for a million rows. Two small files in `RUN_DIR/cache/` make that unnecessary:

- `validation.json`: the *stamp* of the last successful validation, a SHA-256 over what
  decides the submissions (the endpoint, the resolved `inputs`, the manifest's folder,
  the size and mtime of the input file, the listing of a `files:` glob) and the app's
  schema (`schema_cache`), plus the schema itself and the number of submissions. When
  a resume computes the same stamp, the rows are the ones that were validated against
  the same API: validation is skipped.
- `keys.txt`: after a header naming the stamp, one fixed-width line per submission in
  expansion order, `<key> <files>\n`, where `<files>` is a digest of the (path, size,
  mtime) of the submission's local files, or dashes when it has none. It is written
  while the first run expands the rows. On resume a row whose submissions are all in
  the cache and need no work is skipped by reading its keys, without coercing or
  hashing anything; a row with local files is trusted only if a `stat` of its files
  still gives the same digest (an edited file gets a new key, so it runs again).

Both files are only a cache: a missing, stale (other stamp) or torn file is rebuilt
from the rows, and deleting `cache/` is always safe. If the stamp matches and every
cached key is done, the run finishes without starting any replica.
"""

from __future__ import annotations

import collections
import glob
import hashlib
import itertools
import json
import os
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jobs import AppSchema

from ..inputs import Expander, SourceRow, Submission, iter_rows
from ..manifest import Manifest, SourceKind
from ..store import (
    CACHE_FORMAT,
    KeyCache,
    KeyMask,
    RunFolder,
    files_digest,
    mask_of,
    schema_digest,
    schema_from_dict,
    schema_to_dict,
    write_bytes_atomic,
)

__all__ = [
    "KeyCache",
    "Plan",
    "Skipped",
    "ValidationStamp",
    "files_digest",
    "inputs_digest",
    "plan",
    "read_stamp",
    "stamp_of",
    "walk",
    "write_stamp",
]


# --- the stamp -------------------------------------------------------------------------


def inputs_digest(manifest: Manifest) -> str:
    """A digest of everything in the manifest and its input files that decides the
    submissions, apart from the app's schema. Stats files; reads none."""
    data = manifest.to_dict(redact=False)
    parts: dict[str, Any] = {
        "format": CACHE_FORMAT,
        "endpoint": data["app"].get("endpoint"),
        "inputs": data["inputs"],
        "base_dir": str(manifest.base_dir),
    }
    inputs = manifest.inputs
    if inputs.path is not None:
        info = os.stat(inputs.path)
        parts["source"] = [str(inputs.path), info.st_size, info.st_mtime_ns]
    if inputs.source is SourceKind.FILES and inputs.pattern is not None:
        # Rows are the matching files in sorted order: a file added or removed shifts them.
        full = os.path.join(manifest.base_dir, os.path.expanduser(inputs.pattern))
        listing = hashlib.sha256()
        for path in sorted(glob.iglob(full, recursive=True)):
            listing.update(path.encode("utf-8", "surrogateescape") + b"\0")
        parts["listing"] = listing.hexdigest()
    return _digest(parts)


def stamp_of(inputs: str, schema: str) -> str:
    """The validation stamp from `inputs_digest` and `schema_digest`."""
    return _digest([inputs, schema])


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationStamp:
    """What `validation.json` holds: a successful validation of these rows for this API."""

    stamp: str
    inputs: str
    schema_digest: str
    schema: dict[str, Any]
    endpoint: str
    rows: int
    submissions: int
    validated_at: str = ""

    @classmethod
    def of(
        cls,
        manifest: Manifest,
        schema: AppSchema,
        *,
        endpoint: str,
        rows: int,
        submissions: int,
        inputs: str | None = None,
    ) -> ValidationStamp:
        inputs = inputs if inputs is not None else inputs_digest(manifest)
        digest = schema_digest(schema)
        return cls(
            stamp=stamp_of(inputs, digest),
            inputs=inputs,
            schema_digest=digest,
            schema=schema_to_dict(schema),
            endpoint=endpoint,
            rows=rows,
            submissions=submissions,
            validated_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )

    def app_schema(self) -> AppSchema:
        return schema_from_dict(self.schema)


def read_stamp(run_dir: Path) -> ValidationStamp | None:
    """The run folder's validation stamp, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(RunFolder.at(run_dir).stamp_path.read_bytes())
        if data.get("format") != CACHE_FORMAT:
            return None
        return ValidationStamp(
            stamp=str(data["stamp"]),
            inputs=str(data["inputs"]),
            schema_digest=str(data["schema_digest"]),
            schema=dict(data["schema"]),
            endpoint=str(data["endpoint"]),
            rows=int(data["rows"]),
            submissions=int(data["submissions"]),
            validated_at=str(data.get("validated_at")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_stamp(run_dir: Path, stamp: ValidationStamp) -> None:
    data = {
        "format": CACHE_FORMAT,
        "stamp": stamp.stamp,
        "inputs": stamp.inputs,
        "schema_digest": stamp.schema_digest,
        "endpoint": stamp.endpoint,
        "rows": stamp.rows,
        "submissions": stamp.submissions,
        "validated_at": stamp.validated_at,
        "schema": stamp.schema,
    }
    text = json.dumps(data, ensure_ascii=False, default=repr)
    write_bytes_atomic(RunFolder.at(run_dir).stamp_path, text.encode("utf-8"))


def remove_stamp(run_dir: Path) -> None:
    RunFolder.at(run_dir).stamp_path.unlink(missing_ok=True)


# --- walking the submissions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Skipped:
    """Submissions `start` to `end` (positions in the key cache) need no work: their rows
    were not even expanded. `KeyCache.keys(start, end)` gives their keys. `all_ok`: every
    one of them was ok when the run started (so they need not be looked up to count)."""

    start: int
    end: int
    all_ok: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Which cached rows a resume must expand, worked out from the key cache alone."""

    per_row: int
    #: Rows whose submissions are all in the cache.
    cached_rows: int
    #: Cached rows with a `needed` key or local files to check, in order.
    work: tuple[int, ...]
    #: Whether every key that is not needed is ok (no failure kept by --no-retry-failed).
    only_ok: bool

    @property
    def cached(self) -> int:
        return self.cached_rows * self.per_row


def plan(
    manifest: Manifest,
    schema: AppSchema,
    cache: KeyCache,
    needed: KeyMask,
    *,
    retry_failed: bool = True,
) -> Plan:
    """The `Plan` for resuming with `cache`, `needed` telling which keys must be sent
    (raises like `Expander` for a bad manifest)."""
    per_row = len(Expander(manifest, schema, keys=False).combos)
    cached_rows = cache.count // per_row
    return Plan(
        per_row=per_row,
        cached_rows=cached_rows,
        work=tuple(cache.rows_to_expand(per_row, cached_rows, needed)),
        only_ok=retry_failed,
    )


def walk(
    manifest: Manifest,
    schema: AppSchema,
    cache: KeyCache | None,
    needed: Callable[[str], bool],
    *,
    plan_: Plan | None = None,
) -> Iterator[Submission | Skipped]:
    """Every submission of `manifest` in order: a `Submission`, or for runs of rows that
    are in `cache`, have unchanged local files and whose keys are not `needed`, a
    `Skipped` range.

    Which cached rows need expanding is worked out first from the cache alone, in bulk
    (`plan`, or `plan_` if given); the rows in between are read and dropped without being
    looked at. Rows past the end of the cache are expanded and recorded in it. Raises
    `ValidationFailed` at a row that does not fit the endpoint, like `iter_submissions`.
    """
    full = Expander(manifest, schema)
    full.raise_for(full.static_problems, rows=0)
    per_row = len(full.combos)
    if cache is not None and plan_ is None:
        plan_ = plan(manifest, schema, cache, mask_of(needed), retry_failed=False)
    cached_rows = 0 if plan_ is None else plan_.cached_rows
    work = () if plan_ is None else plan_.work
    only_ok = plan_ is not None and plan_.only_ok
    # The rows before the first that needs work are passed over without being built.
    position = min([*work[:1], cached_rows])  # the next row to read
    rows = iter_rows(manifest, skip=position)
    if position:
        yield Skipped(0, position * per_row, only_ok)
    light: Expander | None = None
    for target in [*work, cached_rows]:
        if target > position:
            _drop(rows, target - position)
            yield Skipped(position * per_row, target * per_row, only_ok)
            position = target
        if target == cached_rows:
            break
        row = next(rows, None)
        if row is None:
            return
        position += 1
        assert cache is not None
        start = row.index * per_row
        if row.error is None and not any(map(needed, cache.keys(start, start + per_row))):
            light = light or Expander(manifest, schema, keys=False)
            if _files_unchanged(light, row, cache, start, per_row):
                yield Skipped(start, start + per_row)
                continue
        yield from _expand_and_record(full, row, cache, start)
    index = cached_rows * per_row
    for row in rows:
        submissions = yield from _expand_and_record(full, row, cache, index)
        index += submissions


def _expand_and_record(
    expander: Expander, row: SourceRow, cache: KeyCache | None, index: int
) -> Generator[Submission, None, int]:
    submissions = expander.submissions_of(row)
    for offset, submission in enumerate(submissions):
        if cache is not None:
            try:
                files = files_digest(submission.files)
            except OSError:
                files = None
            cache.put(index + offset, submission.key, files)
        yield submission
    return len(submissions)


def _drop(iterator: Iterator[Any], count: int) -> None:
    """Advance `iterator` by `count` items, at C speed."""
    collections.deque(itertools.islice(iterator, count), maxlen=0)


def all_done(
    manifest: Manifest,
    stamp: ValidationStamp,
    cache: KeyCache,
    needed: Callable[[str], bool],
    plan_: Plan,
) -> bool:
    """Whether every submission is in the cache and none is `needed`, as far as the
    run folder can tell (no app is contacted: the schema is the stamp's)."""
    if plan_.cached < stamp.submissions:
        return False
    if not plan_.work:
        return True
    per_row = plan_.per_row
    for row in plan_.work:
        if any(map(needed, cache.keys(row * per_row, (row + 1) * per_row))):
            return False
    # Rows with local files: a stat of each tells whether it changed since its key was
    # computed; a needed key anywhere ends the walk at once.
    schema = stamp.app_schema()
    return all(
        isinstance(item, Skipped) for item in walk(manifest, schema, cache, needed, plan_=plan_)
    )


def _files_unchanged(
    light: Expander, row: SourceRow, cache: KeyCache, index: int, per_row: int
) -> bool:
    submissions, problems = light.expand_row(row)
    if problems or len(submissions) != per_row:
        return False
    for offset, submission in enumerate(submissions):
        try:
            if files_digest(submission.files) != cache.files(index + offset):
                return False
        except OSError:
            return False
    return True


def _digest(value: Any) -> str:
    text = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=repr
    )
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()
