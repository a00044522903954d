"""The dataset card (README.md) pushed with the results.

It says what a reader of the dataset needs to trust and redo it: the app and endpoint
(Space id and commit, gradio version), the manifest as resolved, the counts by status,
the date and the command. The manifest is the run folder's `manifest.yaml`, written with
its secrets left out; it is masked again here against `secret_values` (the token and the
values of secret variables) in case a value slipped into it, and so is the whole card.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ..store import RunFolder, read_manifest

__all__ = ["AppFacts", "app_facts", "dataset_card"]

_DATA_FILES = "data/train-*.parquet"


@dataclass(frozen=True, slots=True, kw_only=True)
class AppFacts:
    """What computed the results, as far as the run folder knows."""

    endpoint: str | None = None
    space: str | None = None
    space_commit: str | None = None
    gradio: str | None = None


def app_facts(folder: RunFolder, api: Any) -> AppFacts:
    """The app as the results record it (`api` of the first record: gradio version, Space
    id), the endpoint from the run's manifest, and the Space's commit asked of the Hub
    (left out if the Hub cannot say)."""
    recorded: Mapping[str, Any] = {}
    with contextlib.suppress(OSError, ValueError), open(folder.results_path, "rb") as handle:
        for line in handle:
            recorded = json.loads(line).get("api") or {}
            if recorded:
                break
    manifest = read_manifest(folder) or {}
    endpoint = (manifest.get("app") or {}).get("endpoint")
    space, commit = recorded.get("space"), None
    if space:
        with contextlib.suppress(Exception):  # a card without the commit is still right
            commit = api.space_info(space).sha
    return AppFacts(
        endpoint=endpoint, space=space, space_commit=commit, gradio=recorded.get("gradio")
    )


# The Hub's viewer reads the shards through this config (its YAML header).
_CARD_HEADER = {
    "configs": [
        {"config_name": "default", "data_files": [{"split": "train", "path": _DATA_FILES}]}
    ],
    "tags": ["spacerun"],
}
_REPRODUCE = [
    "## Reproduce",
    "",
    "Save the manifest below as `manifest.yaml` and run:",
    "",
    "```",
    "pip install 'spacerun[datasets]'",
    "spacerun run manifest.yaml",
    "```",
    "",
    "## Manifest",
    "",
]


def _app_lines(app: AppFacts) -> list[str]:
    where = app.space or "a Gradio app"
    if app.space and app.space_commit:
        where += f" at commit `{app.space_commit}`"
    return [
        f"- App: {where}",
        f"- Endpoint: `{app.endpoint or '?'}`",
        f"- Gradio: {app.gradio or 'unknown'}",
        f"- Pushed: {datetime.now(timezone.utc).isoformat(timespec='seconds')}",
    ]


def dataset_card(
    *,
    repo: str,
    app: AppFacts,
    manifest: Mapping[str, Any] | None,
    counts: Mapping[str, int],
    rows: int,
    secret_values: Iterable[str] = (),
) -> str:
    import yaml

    counted = ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"
    name = (manifest or {}).get("name", "run")
    lines = [
        "---",
        yaml.safe_dump(_CARD_HEADER, sort_keys=False).rstrip(),
        "---",
        "",
        f"# {repo.split('/', 1)[1]}",
        "",
        f"Results of the spacerun batch `{name}`: {rows} rows ({counted}).",
        "",
        *_app_lines(app),
        "",
        "Columns: `spacerun_key` (the submission's key), the app's inputs, one column per "
        "output, `status` (ok, error, timeout, cancelled) and `error`.",
        "",
        *_REPRODUCE,
        "```yaml",
        yaml.safe_dump(dict(manifest or {}), sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
    ]
    text = "\n".join(lines)
    for secret in secret_values:
        if secret:
            text = text.replace(secret, "********")
    return text
