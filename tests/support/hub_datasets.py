"""Dataset repositories on the Hub stand-in (`tests/support/hub.py`): the routes that
huggingface_hub 2.4 and `datasets` 5 call to read a dataset and to push one.

| caller                                  | route                                               |
|-----------------------------------------|-----------------------------------------------------|
| `dataset_info`, `repo_info`             | `GET  /api/datasets/{id}[/revision/{rev}]`          |
| `list_repo_tree`, `HfFileSystem.ls/glob`| `GET  /api/datasets/{id}/tree/{rev}[/{path}]`       |
| `get_paths_info`, `HfFileSystem.info`   | `POST /api/datasets/{id}/paths-info/{rev}` (a form) |
| `list_repo_refs`                        | `GET  /api/datasets/{id}/refs`                      |
| `hf_hub_download`, `HfFileSystem.open`  | `HEAD`/`GET /datasets/{id}/resolve/{rev}/{path}` |
| `create_repo(repo_type="dataset")`      | `POST /api/repos/create`                            |
| `create_commit` (1: upload modes)       | `POST /api/datasets/{id}/preupload/{rev}`           |
| `create_commit` (2: the commit, NDJSON) | `POST /api/datasets/{id}/commit/{rev}`              |
| `create_commit` with a README.md        | `POST /api/validate-yaml` (its metadata checked)    |

A download honours `Range` (206 with `Content-Range`), as `HfFileSystem` reads Parquet
footers and row groups that way. Shapes as huggingface_hub 2.4 reads them (`hf_api.py`:
`DatasetInfo`, `RepoFile`, `RepoFolder`, `GitRefs`, `create_repo`, `validate_yaml`;
`_commit_api.py`: `_fetch_upload_modes`,
`_prepare_commit_payload`, `_send_commit`; `utils/_http.py`: `hf_raise_for_status`).
A revision is a branch (`main`), the parquet conversion (`refs/convert/parquet`, as the
Hub's dataset viewer keeps it, listed under `converts` by `/refs`) or a commit id.

Errors as the Hub gives them: a missing repo, or a private one the caller may not see,
is `X-Error-Code: RepoNotFound` (401 anonymous, 404 with a token); a gated repo shows its
info and tree but its files answer `X-Error-Code: GatedRepo` (401 anonymous, 403 for a user
not granted access) with the Hub's message; an unknown revision `RevisionNotFound`; a
missing file `EntryNotFound`; creating an existing repo 409 "You already created this
dataset repo" with its `url`; writing without the rights 401/403.

What it does not do as the Hub does: every file is stored in git (preupload answers
`uploadMode: "regular"` for all, so no LFS or Xet transfer happens; the real Hub answers
`"lfs"` for Parquet and for files over 10 MB, and its tree then gives `lfs` fields and its
resolve a 302 to a CDN); commits are never squashed; `parentCommit` is checked.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from .hub import User

__all__ = ["CONVERT_REF", "DatasetRepo", "DatasetRoutes"]

CONVERT_REF = "refs/convert/parquet"
_NOT_FOUND = "Sorry, we can't find the page you are looking for."


def _oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class DatasetRepo:
    id: str
    private: bool = False
    #: "auto" or "manual" when gated (files need an accepted access request), else False.
    gated: str | bool = False
    #: Users granted access to a gated repo.
    granted: set[str] = field(default_factory=set)
    #: Commits per branch, oldest first: (commit id, {path: content}).
    branches: dict[str, list[tuple[str, dict[str, bytes]]]] = field(default_factory=dict)

    @property
    def owner(self) -> str:
        return self.id.split("/", 1)[0]

    def commit(self, files: dict[str, bytes], branch: str = "main") -> str:
        history = self.branches.setdefault(branch, [])
        digest = hashlib.sha1(f"{self.id}:{branch}:{len(history)}".encode())
        for path in sorted(files):
            digest.update(path.encode() + b"\0" + _oid(files[path]).encode())
        sha = digest.hexdigest()
        history.append((sha, dict(files)))
        return sha

    def head(self, branch: str = "main") -> str | None:
        history = self.branches.get(branch)
        return history[-1][0] if history else None

    def files_at(self, revision: str) -> tuple[str, dict[str, bytes]]:
        from .hub import _Reply

        if self.branches.get(revision):
            return self.branches[revision][-1]
        for history in self.branches.values():
            for commit in history:
                if commit[0] == revision:
                    return commit
        if revision == "main" and not self.branches.get("main"):
            return "0" * 40, {}  # a new, empty repo
        raise _Reply(404, f"Invalid rev id: {revision}", code="RevisionNotFound")

    def info(self, revision: str) -> dict[str, Any]:
        sha, files = self.files_at(revision)
        return {
            "_id": f"id-{self.id.replace('/', '-')}",
            "id": self.id,
            "author": self.owner,
            "sha": sha,
            "lastModified": "2025-01-01T00:00:00.000Z",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "private": self.private,
            "gated": self.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "siblings": [{"rfilename": name} for name in sorted(files)],
        }

    def entries(self, revision: str, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        """Tree entries under `prefix`: its direct children, or every descendant."""
        from .hub import _parents, _Reply

        _, files = self.files_at(revision)
        base = prefix.strip("/")
        folders = {f for p in files for f in _parents(p)}
        if base and base not in folders:
            raise _Reply(404, f"{base} does not exist on {revision}", code="EntryNotFound")
        under = [p for p in sorted(folders | set(files)) if not base or p.startswith(base + "/")]
        depth = base.count("/") + 1 if base else 0
        if not recursive:
            under = [p for p in under if p.count("/") == depth]
        return [self.entry(p, files, folders) for p in under]

    def entry(self, path: str, files: dict[str, bytes], folders: set[str]) -> dict[str, Any]:
        if path in files:
            content = files[path]
            return {"type": "file", "oid": _oid(content), "size": len(content), "path": path}
        assert path in folders
        return {"type": "directory", "oid": _oid(path.encode()), "size": 0, "path": path}


class DatasetRoutes:
    """The dataset routes of one `HubServer` (which owns the lock and the users)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.repos: dict[str, DatasetRepo] = {}
        #: Faults for the next commits, one each: "refused" (a 500, nothing committed) or
        #: "reply_lost" (committed, then a 500, as when the answer never reaches the client).
        self.commit_faults: list[str] = []

    def readable(self, repo_id: str, user: User | None) -> DatasetRepo:
        from .hub import visible

        return visible(self.repos.get(repo_id), user)

    def writable(self, repo_id: str, user: User | None) -> DatasetRepo:
        from .hub import _Reply

        if user is None:
            raise _Reply(401, "You must be authenticated to access this resource")
        repo = self.readable(repo_id, user)
        if user.role != "write" or not user.owns(repo.owner):
            raise _Reply(403, f"You don't have the rights to modify {repo_id}")
        return repo

    def api(self, method: str, parts: list[str], user: User | None, body: Any) -> Any:
        """`/api/datasets/{owner}/{name}/...` and `/api/repos/create`."""
        from .hub import _Reply

        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self.create(user, body)
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return _validate_yaml(body)
        if len(parts) < 4:
            raise _Reply(404, _NOT_FOUND)
        repo_id, action = "/".join(parts[2:4]), parts[4] if len(parts) > 4 else ""
        if method == "POST" and action in ("preupload", "commit"):
            repo = self.writable(repo_id, user)
            revision = unquote(parts[5]) if len(parts) > 5 else "main"
            if action == "preupload":
                return _upload_modes(body)
            return self.commit_lines(repo, revision, body)
        repo = self.readable(repo_id, user)
        options = body if isinstance(body, dict) else {}
        revision = unquote(parts[5]) if len(parts) > 5 else "main"
        rest = unquote("/".join(parts[6:]))
        if method == "GET" and action in ("", "revision"):
            return repo.info(revision)
        if method == "GET" and action == "tree":
            return repo.entries(
                revision, rest, recursive=options.get("recursive") in ("true", "True", "1")
            )
        if method == "POST" and action == "paths-info":
            _, files = repo.files_at(revision)
            folders = {f for p in files for f in _parents_of(p)}
            wanted = options.get("paths", [])
            return [repo.entry(p, files, folders) for p in wanted if p in files or p in folders]
        if method == "GET" and action == "refs":
            return self.refs(repo)
        raise _Reply(404, _NOT_FOUND)

    def refs(self, repo: DatasetRepo) -> dict[str, Any]:
        def ref(name: str, full: str) -> dict[str, Any]:
            return {"name": name, "ref": full, "targetCommit": repo.head(name)}

        branches = [ref(b, f"refs/heads/{b}") for b in repo.branches if b != CONVERT_REF]
        converts = [ref(CONVERT_REF, CONVERT_REF)] if repo.head(CONVERT_REF) else []
        for item in converts:
            item["name"] = "parquet"
        return {"branches": branches, "converts": converts, "tags": [], "pullRequests": []}

    def create(self, user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        from .hub import _Reply

        if user is None:
            raise _Reply(401, "You must be authenticated to access this resource")
        namespace = body.get("organization") or user.name
        repo_id = f"{namespace}/{body['name']}"
        if user.role != "write" or not user.owns(namespace):
            raise _Reply(403, f"You don't have the rights to create a dataset under {namespace}")
        url = f"{self.url}/datasets/{repo_id}"
        if body.get("type") != "dataset":
            raise _Reply(400, "The stand-in makes dataset repos only")
        if repo_id in self.repos:
            raise _Reply(409, "You already created this dataset repo", url=url)
        private = body.get("visibility", "public") != "public"
        self.repos[repo_id] = DatasetRepo(id=repo_id, private=private)
        return {"url": url, "name": repo_id}

    def commit_lines(
        self, repo: DatasetRepo, revision: str, lines: list[dict[str, Any]]
    ) -> dict[str, Any]:
        from .hub import _Reply

        fault = self.commit_faults.pop(0) if self.commit_faults else None
        if fault == "refused":
            raise _Reply(500, "Internal Error")
        header = next((line["value"] for line in lines if line.get("key") == "header"), None)
        if header is None or not header.get("summary"):
            raise _Reply(400, "A commit needs a header with a summary")
        head, files = repo.files_at(revision)
        parent = header.get("parentCommit")
        if parent is not None and parent != head:
            raise _Reply(412, "A commit has happened since. Please refresh and try again.")
        new = dict(files)
        for line in lines:
            key, value = line.get("key"), line.get("value") or {}
            if key == "file":
                new[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                if value["path"] not in new:
                    raise _Reply(404, f"File not found: {value['path']}")
                del new[value["path"]]
            elif key == "deletedFolder":
                new = {p: c for p, c in new.items() if not p.startswith(value["path"] + "/")}
            elif key == "lfsFile":
                raise _Reply(400, "the stand-in stores no LFS files (preupload said regular)")
        branch = revision if revision in repo.branches or revision == "main" else "main"
        sha = repo.commit(new, branch)
        if fault == "reply_lost":
            raise _Reply(500, "Internal Error")
        return {
            "success": True,
            "commitOid": sha,
            "commitUrl": f"{self.url}/datasets/{repo.id}/commit/{sha}",
            "hookOutput": "",
        }

    def resolve(
        self, method: str, parts: list[str], user: User | None, byte_range: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        """`/datasets/{owner}/{name}/resolve/{rev}/{path}`: status, headers, body."""
        from .hub import _Reply

        repo = self.readable("/".join(parts[1:3]), user)
        commit, files = repo.files_at(unquote(parts[4]))
        if repo.gated and (user is None or user.name not in repo.granted):
            message = (
                f"Access to dataset {repo.id} is restricted. You must have access to it and "
                "be authenticated to access it. Please log in."
                if user is None
                else f"Access to dataset {repo.id} is restricted and you are not in the "
                f"authorized list. Visit {self.url}/datasets/{repo.id} to ask for access."
            )
            raise _Reply(401 if user is None else 403, message, code="GatedRepo")
        name = unquote("/".join(parts[5:]))
        if name not in files:
            headers = {"X-Repo-Commit": commit}
            raise _Reply(404, f"Entry not found: {name}", code="EntryNotFound", headers=headers)
        content = files[name]
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{_oid(content)}"',
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
        }
        status, body = 200, content
        if byte_range and byte_range.startswith("bytes="):
            start_text, _, end_text = byte_range[6:].partition("-")
            if start_text:
                start = int(start_text)
                end = min(int(end_text), len(content) - 1) if end_text else len(content) - 1
            else:  # a suffix: the last N bytes
                start, end = max(len(content) - int(end_text), 0), len(content) - 1
            if start >= len(content):
                headers["Content-Range"] = f"bytes */{len(content)}"
                raise _Reply(416, "Requested Range Not Satisfiable", headers=headers)
            status, body = 206, content[start : end + 1]
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
        headers["Content-Length"] = str(len(body))
        return status, headers, body


def _parents_of(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _upload_modes(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "files": [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
            for f in body.get("files", [])
        ],
        "commitOid": None,
    }


def _validate_yaml(body: dict[str, Any]) -> dict[str, Any]:
    """The card's front matter must be YAML mapping; the Hub answers 400 with `errors`
    otherwise (huggingface_hub raises "Invalid metadata in README.md")."""
    import yaml

    from .hub import _Reply

    text = body.get("content", "")
    front = text.split("---", 2)[1] if text.startswith("---") and text.count("---") >= 2 else ""
    try:
        meta = yaml.safe_load(front) if front else {}
    except yaml.YAMLError as exc:
        raise _Reply(400, "Invalid YAML", errors=[{"message": str(exc)}]) from None
    if not isinstance(meta, dict):
        raise _Reply(400, "Invalid YAML", errors=[{"message": "metadata must be a mapping"}])
    return {"errors": [], "warnings": []}
