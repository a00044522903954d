"""A run folder's results -> a dataset repo on the Hub, incrementally and never twice.

Each push adds one or more new Parquet shards (`data/train-NNNNN.parquet`) holding the
keys that are new or changed since the last push, and the card, in one commit
(`huggingface_hub.create_commit`, atomic on the Hub). A key that changed (an error
retried into ok by a resume) is taken out of the shard that held it, in the same
commit, so a key is in the dataset once, as its latest record (its ok one if any).

`push/state.json` in the run folder holds, per shard, the keys it holds, and per key
the record pushed (its `finished_at`). It is written before a commit with the commit's
plan as `pending`, and after it without: a push interrupted between the two is finished
by the next one, which finds the plan's first new shard on the Hub (the commit landed:
the plan is taken as done) or not (the plan is dropped and made again). A push to a
repo other than the one in the state starts the state anew.

huggingface_hub does the transfers; `datasets.push_to_hub` is not used because it
rewrites every shard on each push and knows nothing of keys.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store import RunDir, RunFolder, read_manifest, write_bytes_atomic
from ._card import AppFacts, app_facts, dataset_card
from ._table import ShardWriter

__all__ = ["PushReport", "push_results"]

_STATE_FORMAT = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class PushReport:
    """What one push did."""

    repo: str
    #: The commit made; None when there was nothing new to push.
    commit: str | None
    rows_added: int
    #: Keys pushed before whose record changed (taken out of their old shard).
    rows_replaced: int
    shards: tuple[str, ...]
    #: Bytes of the Parquet shards uploaded.
    bytes: int
    #: A pending push of an earlier run that was found on the Hub and taken as done.
    finished_earlier: bool = False


@dataclass(slots=True)
class _State:
    repo: str
    shards: dict[str, list[str]] = field(default_factory=dict)
    pushed: dict[str, str] = field(default_factory=dict)
    next: int = 0
    pending: dict[str, Any] | None = None

    @classmethod
    def load(cls, path: Path, repo: str) -> _State:
        try:
            data = json.loads(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return cls(repo)
        if data.get("format") != _STATE_FORMAT or data.get("repo") != repo:
            return cls(repo)
        return cls(repo, data["shards"], data["pushed"], data["next"], data.get("pending"))

    def save(self, path: Path) -> None:
        data = {
            "format": _STATE_FORMAT,
            "repo": self.repo,
            "next": self.next,
            "shards": self.shards,
            "pushed": self.pushed,
            "pending": self.pending,
        }
        write_bytes_atomic(path, json.dumps(data, separators=(",", ":")).encode())

    def apply(self, plan: dict[str, Any]) -> None:
        for shard in plan["deleted"]:
            self.shards.pop(shard, None)
        self.shards.update(plan["shards"])
        self.pushed.update(plan["pushed"])
        self.next = plan["next"]
        self.pending = None


def push_results(
    run_dir: RunDir,
    repo: str,
    *,
    token: str | None = None,
    endpoint: str | None = None,
    private: bool = True,
    columns: Sequence[str] | None = None,
    app: AppFacts | None = None,
    secret_values: Iterable[str] = (),
) -> PushReport:
    """Push what is new in the run folder's results to the dataset `repo` (made, private
    unless said otherwise, if missing). Blocking; network through huggingface_hub."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

    from ..store import load_table

    folder = RunFolder.at(run_dir)
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo, repo_type="dataset", private=private, exist_ok=True)
    state = _State.load(folder.push_state_path, repo)
    finished = _finish_pending(api, repo, state, folder)
    table = load_table(folder, nested="json")
    records: list[dict[str, Any]] = table.to_dict(orient="records")  # type: ignore[assignment]
    changed = [r for r in records if state.pushed.get(str(r["key"])) != str(r["finished_at"])]
    writer = ShardWriter.for_table(folder.root, table, columns)
    staging = folder.push_staging
    plan, operations, replaced = _stage(state, changed, records, writer, staging)
    added_bytes = sum((staging / name).stat().st_size for name in plan["shards"])
    if not plan["shards"]:
        return PushReport(
            repo=repo, commit=None, rows_added=0, rows_replaced=0, shards=(), bytes=0,
            finished_earlier=finished,
        )  # fmt: skip
    for name in plan["deleted"]:
        operations.append(CommitOperationDelete(name))
    card = _card(repo, table, folder, app or app_facts(folder, api), [*secret_values, token])
    operations.append(CommitOperationAdd("README.md", card.encode("utf-8")))
    plan["check"] = next(iter(plan["shards"]))
    state.pending = plan
    state.save(folder.push_state_path)
    info = api.create_commit(
        repo,
        operations,
        commit_message=f"spacerun: {len(changed)} results ({replaced} replaced)",
        repo_type="dataset",
    )
    state.apply(plan)
    state.save(folder.push_state_path)
    shutil.rmtree(staging, ignore_errors=True)
    return PushReport(
        repo=repo,
        commit=info.oid,
        rows_added=len(changed) - replaced,
        rows_replaced=replaced,
        shards=tuple(plan["shards"]),
        bytes=added_bytes,
        finished_earlier=finished,
    )


def _card(
    repo: str, table: Any, folder: RunFolder, app: AppFacts, secrets: list[str | None]
) -> str:
    counts = table["status"].value_counts().to_dict() if len(table) else {}
    return dataset_card(
        repo=repo,
        app=app,
        manifest=read_manifest(folder),
        counts={str(k): int(v) for k, v in counts.items()},
        rows=len(table),
        secret_values=[secret for secret in secrets if secret],
    )


def _stage(
    state: _State,
    changed: list[dict[str, Any]],
    records: list[dict[str, Any]],
    writer: ShardWriter,
    staging: Path,
) -> tuple[dict[str, Any], list[Any], int]:
    """Write the new shards (and the old ones rewritten without a changed key) into
    `staging`: the plan the push state keeps until the commit lands, its operations, and
    how many rows replace ones already pushed."""
    from huggingface_hub import CommitOperationAdd

    shutil.rmtree(staging, ignore_errors=True)
    plan: dict[str, Any] = {"shards": {}, "deleted": [], "pushed": {}, "next": state.next}
    operations: list[Any] = []
    for chunk in writer.chunks(changed):
        name = f"data/train-{plan['next']:05d}.parquet"
        plan["next"] += 1
        writer.write(chunk, staging / name)
        plan["shards"][name] = [str(r["key"]) for r in chunk]
        plan["pushed"].update({str(r["key"]): str(r["finished_at"]) for r in chunk})
        operations.append(CommitOperationAdd(name, str(staging / name)))
    changed_keys = {str(r["key"]) for r in changed}
    replaced = _rewrite_shards(state, changed_keys, records, writer, staging, plan, operations)
    return plan, operations, replaced


def _finish_pending(api: Any, repo: str, state: _State, folder: RunFolder) -> bool:
    """Settle a push an earlier run left under way: True if its commit had landed."""
    plan = state.pending
    if plan is None:
        return False
    landed = bool(api.file_exists(repo, plan["check"], repo_type="dataset"))
    if landed:
        state.apply(plan)
    state.pending = None
    state.save(folder.push_state_path)
    return landed


def _rewrite_shards(
    state: _State,
    changed: set[str],
    records: list[dict[str, Any]],
    writer: ShardWriter,
    staging: Path,
    plan: dict[str, Any],
    operations: list[Any],
) -> int:
    """Take the changed keys out of the shards that held them (rewritten, or deleted when
    nothing is left); the number of keys so replaced."""
    from huggingface_hub import CommitOperationAdd

    by_key = {str(r["key"]): r for r in records}
    replaced = 0
    for shard, keys in state.shards.items():
        gone = [k for k in keys if k in changed]
        if not gone:
            continue
        replaced += len(gone)
        kept = [k for k in keys if k not in changed and k in by_key]
        if not kept:
            plan["deleted"].append(shard)
            continue
        writer.write([by_key[k] for k in kept], staging / shard)
        plan["shards"][shard] = kept
        operations.append(CommitOperationAdd(shard, str(staging / shard)))
    return replaced
