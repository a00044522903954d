"""A Space's files, for running it locally: downloaded once, pinned to one commit.

`fetch_space` downloads the Space's repository through huggingface_hub's
`snapshot_download` (into its cache, shared with every other tool; a second run
downloads nothing) and reads its README card (`sdk`, `sdk_version`, `python_version`,
`app_file`). The commit it got is written to the run folder (`spaces.json`), so a resume
of that folder runs the same code even after the Space's owner pushed; `--restart` sets
the folder aside and takes the newest commit again.

The app runs in the snapshot folder of that commit (in huggingface_hub's cache): files
it writes next to itself land there.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import yaml

from ..store import RunFolder
from ._spec import LocalAppError

__all__ = ["SpaceCard", "SpaceFiles", "fetch_space", "read_card"]

#: In the run folder: `{"owner/name": "<commit>", "owner/name@v2": "<commit>"}`.
_FRONT_MATTER = re.compile(r"\A---\s*\n(.*?)\n---\s*(\n|\Z)", re.DOTALL)


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceCard:
    """The README metadata a Space runs by (what the Hub reads to build it)."""

    sdk: str | None = None
    sdk_version: str | None = None
    python_version: str | None = None
    app_file: str = "app.py"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceFiles:
    """A Space's repository at one commit, on this machine."""

    space: str
    commit: str
    folder: Path
    card: SpaceCard

    @property
    def app(self) -> Path:
        return self.folder / self.card.app_file

    @property
    def requirements(self) -> str:
        path = self.folder / "requirements.txt"
        return path.read_text(encoding="utf-8") if path.is_file() else ""


def read_card(readme: str) -> SpaceCard:
    """The card of a README.md (its YAML front matter); defaults where it says nothing."""
    match = _FRONT_MATTER.match(readme)
    try:
        # Every value as written: `python_version: 3.10` is 3.10, not the number 3.1.
        data = yaml.load(match.group(1), Loader=yaml.BaseLoader) if match else None
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        return SpaceCard()

    def text(key: str) -> str | None:
        value = data.get(key)
        return None if value is None else str(value).strip()

    return SpaceCard(
        sdk=text("sdk"),
        sdk_version=text("sdk_version"),
        python_version=text("python_version"),
        app_file=text("app_file") or "app.py",
    )


async def fetch_space(
    space: str,
    revision: str | None,
    *,
    token: str | None,
    endpoint: str | None,
    pin_dir: Path | None,
    on_status: Callable[[str], None],
) -> SpaceFiles:
    """The Space's files at `revision` (None: its main branch), or at the commit pinned
    in `pin_dir` for that same request. Raises LocalAppError saying what to do."""
    request = space + (f"@{revision}" if revision else "")
    pins = _read_pins(pin_dir)
    pinned = pins.get(request)
    if pinned is not None:
        on_status(f"Space {request}: commit {pinned[:12]} (pinned in this run folder)")
    else:
        on_status(f"downloading Space {request} (through huggingface_hub's cache)")
    folder = await anyio.to_thread.run_sync(
        lambda: _download(space, pinned or revision, token=token, endpoint=endpoint)
    )
    commit = Path(folder).name  # snapshots/<commit>
    if pinned is None and pin_dir is not None:
        pins[request] = commit
        _write_pins(pin_dir, pins)
    readme = Path(folder) / "README.md"
    card = read_card(readme.read_text(encoding="utf-8")) if readme.is_file() else SpaceCard()
    files = SpaceFiles(space=space, commit=commit, folder=Path(folder), card=card)
    if card.sdk not in (None, "gradio"):
        raise LocalAppError(
            f"Space {request} is a {card.sdk} Space (sdk: {card.sdk} in its README); spacerun "
            f"runs gradio apps only: use it as space: {space} instead",
            script=files.app,
        )
    if not files.app.is_file():
        raise LocalAppError(
            f"Space {request} has no app file {card.app_file} at commit {commit[:12]}; check "
            "app_file in its README, or the revision",
            script=files.app,
        )
    return files


def _download(space: str, revision: str | None, *, token: str | None, endpoint: str | None) -> str:
    from huggingface_hub import errors, snapshot_download

    request = space + (f"@{revision}" if revision else "")
    hub = endpoint or "the Hugging Face Hub"
    try:
        folder: str = snapshot_download(
            space, repo_type="space", revision=revision, token=token, endpoint=endpoint
        )
    except errors.GatedRepoError:
        why = "is gated: request access on its page, and give hf_token"
    except errors.RevisionNotFoundError:
        why = f"has no revision {revision!r} on {hub}: check the part after @"
    except errors.RepositoryNotFoundError:
        why = (
            f"was not found on {hub}: check the id, or, if it is private, give hf_token "
            "(a token that may read it)"
        )
    except errors.LocalEntryNotFoundError:
        why = (
            f"could not be downloaded: {hub} did not answer and it is not in huggingface_hub's "
            "cache; check the network (or HF_ENDPOINT)"
        )
    except errors.HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else "?"
        why = f"could not be downloaded from {hub} (HTTP {status}); try again later"
    else:
        return folder
    raise LocalAppError(f"Space {request} {why}", script=Path(space))


def _read_pins(pin_dir: Path | None) -> dict[str, str]:
    if pin_dir is None:
        return {}
    try:
        data: Any = json.loads(RunFolder.at(pin_dir).spaces_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write_pins(pin_dir: Path, pins: dict[str, str]) -> None:
    pin_dir.mkdir(parents=True, exist_ok=True)
    path = RunFolder.at(pin_dir).spaces_path
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(pins, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    temporary.replace(path)
