"""A local stand-in for the Hugging Face Hub's Space API, for tests.

It answers the routes huggingface_hub 2.4 calls for the functions `jobs._hub.spaces` uses,
in the shapes the real Hub answers them, errors included:

| huggingface_hub call       | route                                   |
|----------------------------|-----------------------------------------|
| `whoami`                   | `GET  /api/whoami-v2`                   |
| `space_info`               | `GET  /api/spaces/{id}`                 |
| `get_space_runtime`        | `GET  /api/spaces/{id}/runtime`         |
| `duplicate_repo(space)`    | `POST /api/spaces/{id}/duplicate`       |
| `get_space_secrets`        | `GET  /api/spaces/{id}/secrets`         |
| `add_space_secret`         | `POST /api/spaces/{id}/secrets`         |
| `request_space_hardware`   | `POST /api/spaces/{id}/hardware`        |
| `set_space_sleep_time`     | `POST /api/spaces/{id}/sleeptime`       |
| `snapshot_download(space)` | `GET  /api/spaces/{id}/revision/{rev}`  |
|   (repo_info, then the     | `GET  /api/spaces/{id}/tree/{commit}`   |
|   tree, then each file)    | `HEAD`/`GET /spaces/{id}/resolve/{commit}/{file}` |
| `pause_space`              | `POST /api/spaces/{id}/pause`           |
| `restart_space`            | `POST /api/spaces/{id}/restart`         |
| `list_spaces_hardware`     | `GET  /api/spaces/hardware`             |
| `get_zero_gpu_quota`       | `GET  /api/spaces/zero-gpu/quota`       |

(Routes and shapes as huggingface_hub 2.4's `hf_api.py`, `_space_api.py` and
`_jobs_api.py` call and read them; the data is in `hub_data.py`.)

A Space's repository is served once a test gives it files (`HubServer.push(space_id,
{"app.py": ...})`, one commit per push): `space_info` then reports that commit as `sha`
and its files as `siblings`; the tree lists `{"type": "file", "oid", "size", "path"}`
(and `"directory"` entries for folders, as `recursive=True` does); a file download answers
with the headers huggingface_hub 2.4 checks in `get_hf_file_metadata`: `X-Repo-Commit`
(without it, "does not seem to be served by a Hugging Face Hub endpoint"), `ETag` (the
file's git blob id, quoted, as the Hub sends it for files stored in git) and
`Content-Length`. Revisions are `main` or a commit id; anything else is a 404 with
`X-Error-Code: RevisionNotFound`, a missing file a 404 with `EntryNotFound`, as on the
Hub (huggingface_hub maps these codes to its `RevisionNotFoundError` and
`RemoteEntryNotFoundError`).

Errors, as the real Hub gives them:

* an invalid token -> 401 `{"error": "Invalid credentials in Authorization header"}` on every
  route (huggingface_hub special-cases exactly that `X-Error-Message`);
* a missing Space, or a private one the caller cannot see -> `X-Error-Code: RepoNotFound`,
  401 when anonymous and 404 with a valid token (the Hub does not tell the two apart);
* duplicating onto an existing repo -> 409 with the existing repo's `url` in the body
  (`duplicate_repo(exist_ok=True)` reads it);
* writing without a token -> 401; with a read token, or into a namespace or Space that is
  not the caller's -> 403. (The exact 403 wording of the real Hub varies by route; the
  status codes are what clients act on.)
* the ZeroGPU quota -> 401 anonymous; 403 for a token without the "read billing"
  permission (`User.billing=False`);
* rate limiting: every answer carries `RateLimit: "api";r=<left>;t=<reset>` and
  `RateLimit-Policy: "fixed window";"api";q=500;w=300` (IETF draft headers, as the Hub
  sends them); `HubServer.rate_limit(times, reset)` makes the next `times` requests 429
  with `r=0` (no `Retry-After`: the Hub announces the wait in `RateLimit` only).

Pausing a Space makes its stage PAUSED until a restart, which plays
`HubServer.restart_stages`. A copy takes time to start on the real Hub (a container is
scheduled and the app loads: seconds to minutes): `HubServer.start_seconds` makes a new
duplicate or a restarted Space answer APP_STARTING for that long before its stages go
on; `HubServer.set_stage` changes a Space's stage from a test (e.g. RUNNING ->
RUNTIME_ERROR in the middle of a batch).

Runtime stages are scripted per Space: each `GET .../runtime` answers the next stage of
`Space.stages` and the last one sticks; `GET /api/spaces/{id}` reports the current stage
without advancing. Every request is recorded (`HubServer.requests`) with its Authorization
header and JSON body, so a test can check what reached the Hub.

Usage:

    with HubServer() as hub:
        hub.add_user("alice", token="hf_alice")
        hub.add_space("bob/echo", host=app_url, stages=["BUILDING", "RUNNING"])
        await space_host("bob/echo", token=None, endpoint=hub.url)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

from .hub_data import HARDWARE_LIST, ZeroGpuQuota
from .hub_datasets import CONVERT_REF, DatasetRepo, DatasetRoutes
from .servers import starting

__all__ = [
    "CONVERT_REF",
    "FREE_SLEEP_SECONDS",
    "HARDWARE",
    "DatasetRepo",
    "HubServer",
    "RecordedRequest",
    "Space",
    "User",
    "ZeroGpuQuota",
]

#: Flavors the real Hub accepts (subset); anything else is a 400 as on the Hub.
HARDWARE = frozenset(
    {
        "cpu-basic",
        "cpu-upgrade",
        "cpu-xl",
        "zero-a10g",
        "t4-small",
        "t4-medium",
        "l4x1",
        "l4x4",
        "l40sx1",
        "a10g-small",
        "a10g-large",
        "a10g-largex2",
        "a100-large",
        "h100",
    }
)
FREE_SLEEP_SECONDS = 172_800  # cpu-basic Spaces sleep after 48 h; not configurable


@dataclass
class User:
    name: str
    token: str
    orgs: tuple[str, ...] = ()
    #: "write" or "read": the token's role, as in the Hub's token settings.
    role: str = "write"
    #: The token may read billing (the ZeroGPU quota); fine-grained tokens may not.
    billing: bool = True
    zero_gpu: ZeroGpuQuota = field(default_factory=ZeroGpuQuota)

    def owns(self, namespace: str) -> bool:
        return namespace == self.name or namespace in self.orgs


@dataclass
class Space:
    id: str
    private: bool = False
    host: str | None = None
    hardware: str | None = "cpu-basic"
    requested_hardware: str | None = "cpu-basic"
    sleep_time: int | None = FREE_SLEEP_SECONDS
    #: Stages answered by successive runtime GETs; the last one sticks.
    stages: list[str] = field(default_factory=lambda: ["RUNNING"])
    secrets: dict[str, str] = field(default_factory=dict)
    duplicated_from: str | None = None
    #: The repository's commits, oldest first: (commit id, {path: content}).
    commits: list[tuple[str, dict[str, bytes]]] = field(default_factory=list)
    #: Until then (time.monotonic()) it is still starting: APP_STARTING, stages held.
    starting_until: float | None = None

    def __post_init__(self) -> None:
        # The real Hub always reports a host; set `space.host = None` afterwards to test a
        # client's fallback for an answer without one (the field is then left out).
        if self.host is None:
            self.host = f"https://{self.subdomain}.hf.space"

    @property
    def owner(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def subdomain(self) -> str:
        return self.id.lower().replace("/", "-").replace("_", "-").replace(".", "-")

    def runtime(self, *, advance: bool) -> dict[str, Any]:
        stage = self.stages[0]
        if self.starting_until is not None and time.monotonic() < self.starting_until:
            stage, advance = "APP_STARTING", False
        if advance and len(self.stages) > 1:
            self.stages.pop(0)
        return {
            "stage": stage,
            "hardware": {"current": self.hardware, "requested": self.requested_hardware},
            "storage": None,
            "gcTimeout": self.sleep_time,
            "replicas": {"current": 1, "requested": 1},
            "devMode": False,
            "domains": [{"domain": f"{self.subdomain}.hf.space", "stage": "READY"}],
        }

    def files_at(self, revision: str) -> tuple[str, dict[str, bytes]]:
        """The commit and files of `revision` (`main` or a commit id); _Reply if unknown."""
        if self.commits and revision == "main":
            return self.commits[-1]
        for commit in self.commits:
            if commit[0] == revision:
                return commit
        raise _Reply(
            404,
            f"Invalid rev id: {revision}",
            code="RevisionNotFound",
            headers=self._repo_headers(),
        )

    def _repo_headers(self) -> dict[str, str]:
        return {"X-Repo-Commit": self.commits[-1][0]} if self.commits else {}

    def info(self, revision: str | None = None) -> dict[str, Any]:
        sha, files = ("0" * 40, {}) if not self.commits else self.files_at(revision or "main")
        siblings = sorted(files) if files else ["README.md", "app.py"]
        return {
            "_id": f"id-{self.subdomain}",
            "id": self.id,
            "author": self.owner,
            "sha": sha,
            "lastModified": "2025-01-01T00:00:00.000Z",
            "createdAt": "2025-01-01T00:00:00.000Z",
            "private": self.private,
            "gated": False,
            "disabled": False,
            "subdomain": self.subdomain,
            **({"host": self.host} if self.host is not None else {}),
            "likes": 0,
            "sdk": "gradio",
            "tags": ["gradio", "region:us"],
            "runtime": self.runtime(advance=False),
            "siblings": [{"rfilename": name} for name in siblings],
        }

    def tree(self, revision: str) -> list[dict[str, Any]]:
        _, files = self.files_at(revision)
        folders = sorted({str(parent) for p in files for parent in _parents(p)})
        entries: list[dict[str, Any]] = [
            {"type": "directory", "oid": _git_oid(folder.encode()), "size": 0, "path": folder}
            for folder in folders
        ]
        for path in sorted(files):
            oid = _git_oid(files[path])
            entries.append({"type": "file", "oid": oid, "size": len(files[path]), "path": path})
        return entries


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    authorization: str | None
    body: Any
    #: The query string (`factory=true` on a factory reboot, as huggingface_hub sends it).
    query: str = ""


class _Reply(Exception):
    """Raised by a route to answer with an error status (the Hub's error shape)."""

    def __init__(
        self,
        status: int,
        error: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ):
        super().__init__(error)
        self.status, self.error, self.code, self.extra = status, error, code, extra
        self.headers = headers or {}


_Repo = TypeVar("_Repo", bound="_Owned")


class _Owned(Protocol):
    @property
    def private(self) -> bool: ...
    @property
    def owner(self) -> str: ...


def visible(repo: _Repo | None, user: User | None) -> _Repo:
    """`repo` as `user` may see it. The Hub hides private repos: the same answer as a
    missing one, 401 when anonymous (Spaces and datasets alike)."""
    if repo is None or (repo.private and (user is None or not user.owns(repo.owner))):
        raise _Reply(401 if user is None else 404, "Repository not found", code="RepoNotFound")
    return repo


def _git_oid(content: bytes) -> str:
    """A git blob id, as the Hub's ETag and tree `oid` give for files stored in git."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


class HubServer:
    """The stand-in Hub on 127.0.0.1 (a free port), served by a thread. Use as a context manager."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}  # by token
        self.spaces: dict[str, Space] = {}
        self.requests: list[RecordedRequest] = []
        #: Host URL of a Space created by duplication (None: the real Hub's convention).
        self.duplicate_host: Callable[[str], str | None] = lambda space_id: None
        #: Stages a new duplicate goes through.
        self.duplicate_stages: Sequence[str] = ("BUILDING", "APP_STARTING", "RUNNING")
        #: Stages a Space goes through after a restart.
        self.restart_stages: Sequence[str] = ("APP_STARTING", "RUNNING")
        #: Seconds a new duplicate or a restarted Space takes to start (APP_STARTING).
        self.start_seconds = 0.0
        self._rate_limited = 0
        self._rate_reset = 55
        self._requests_left = 500
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: Dataset repositories (`hub_datasets.py`); their URLs are known once started.
        self.dataset_routes = DatasetRoutes("")

    # -- configuration --------------------------------------------------------

    def add_user(
        self, name: str, *, token: str, orgs: Iterable[str] = (), role: str = "write"
    ) -> User:
        user = User(name=name, token=token, orgs=tuple(orgs), role=role)
        self.users[token] = user
        return user

    def add_space(
        self, space_id: str, *, stages: Iterable[str] = ("RUNNING",), **options: Any
    ) -> Space:
        space = Space(id=space_id, stages=list(stages), **options)
        self.spaces[space_id] = space
        return space

    def push(self, space_id: str, files: dict[str, str | bytes]) -> str:
        """Commit `files` (the whole repository) to a Space, made if missing; its id."""
        space = self.spaces.get(space_id) or self.add_space(space_id)
        content = {k: v.encode() if isinstance(v, str) else v for k, v in files.items()}
        digest = hashlib.sha1(f"{space_id}:{len(space.commits)}".encode())
        for path in sorted(content):
            digest.update(path.encode() + b"\0" + _git_oid(content[path]).encode())
        commit = digest.hexdigest()
        space.commits.append((commit, content))
        return commit

    def add_dataset(
        self, repo_id: str, files: dict[str, bytes] | None = None, **options: Any
    ) -> DatasetRepo:
        """A dataset repo (private, gated: see `DatasetRepo`), with a first commit of `files`."""
        repo = DatasetRepo(id=repo_id, **options)
        self.dataset_routes.repos[repo_id] = repo
        if files is not None:
            repo.commit(files)
        return repo

    @property
    def datasets(self) -> dict[str, DatasetRepo]:
        return self.dataset_routes.repos

    def set_stage(self, space_id: str, stage: str) -> None:
        """From now on the Space is in `stage` (thread-safe, for a batch under way)."""
        with self._lock:
            self.spaces[space_id].stages = [stage]

    def rate_limit(self, times: int, *, reset: int = 55) -> None:
        """The next `times` requests answer 429, the window resetting in `reset` s."""
        with self._lock:
            self._rate_limited, self._rate_reset = times, reset

    def rate_headers(self) -> dict[str, str]:
        return {
            "RateLimit": f'"api";r={self._requests_left};t={self._rate_reset}',
            "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
        }

    # -- inspection -----------------------------------------------------------

    def calls(self, method: str, suffix: str = "") -> list[RecordedRequest]:
        """Recorded requests with this method whose path ends with `suffix`."""
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.endswith(suffix)]

    # -- lifecycle ------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start the HubServer first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> HubServer:
        starting("the Hub stand-in")
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self.dataset_routes.url = self.url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        # huggingface_hub keeps connections alive in a process-wide client: close them, or
        # their handler threads would wait for a next request forever.
        with self._lock:
            open_connections = list(self._connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- routes ---------------------------------------------------------------

    def handle(
        self, method: str, path: str, authorization: str | None, body: Any, query: str = ""
    ) -> Any:
        """Answer one request (called under the lock); raises _Reply for errors."""
        self.requests.append(RecordedRequest(method, path, authorization, body, query))
        if self._rate_limited:
            self._rate_limited -= 1
            exhausted = {
                "RateLimit": f'"api";r=0;t={self._rate_reset}',
                "RateLimit-Policy": '"fixed window";"api";q=500;w=300',
            }
            raise _Reply(429, "You have been rate-limited; retry later.", headers=exhausted)
        self._requests_left = max(0, self._requests_left - 1)
        user = self._authenticate(authorization)
        parts = path.strip("/").split("/")
        if parts[:2] in (["api", "datasets"], ["api", "validate-yaml"]) or parts[:3] == [
            "api",
            "repos",
            "create",
        ]:
            return self.dataset_routes.api(method, parts, user, body)
        if parts == ["api", "whoami-v2"] and method == "GET":
            return self._whoami(user)
        if len(parts) >= 6 and parts[:2] == ["api", "spaces"] and parts[4] in ("revision", "tree"):
            space = self._readable("/".join(parts[2:4]), user)
            revision = unquote(parts[5])
            return space.info(revision) if parts[4] == "revision" else space.tree(revision)
        if parts == ["api", "spaces", "hardware"] and method == "GET":
            return HARDWARE_LIST
        if parts == ["api", "spaces", "zero-gpu", "quota"] and method == "GET":
            return self._quota(user)
        if len(parts) < 4 or parts[:2] != ["api", "spaces"]:
            raise _Reply(404, "Sorry, we can't find the page you are looking for.")
        space_id, action = "/".join(parts[2:4]), "/".join(parts[4:])
        space = self._readable(space_id, user)
        routes: dict[tuple[str, str], Callable[[], Any]] = {
            ("GET", ""): space.info,
            ("GET", "runtime"): lambda: space.runtime(advance=True),
            ("POST", "duplicate"): lambda: self._duplicate(space, user, body),
            ("GET", "secrets"): lambda: self._secrets(space, user),
            ("POST", "secrets"): lambda: self._add_secret(space, user, body),
            ("POST", "hardware"): lambda: self._hardware(space, user, body),
            ("POST", "sleeptime"): lambda: self._sleeptime(space, user, body),
            ("POST", "pause"): lambda: self._pause(space, user),
            ("POST", "restart"): lambda: self._restart(space, user),
        }
        route = routes.get((method, action))
        if route is None:
            raise _Reply(404, "Sorry, we can't find the page you are looking for.")
        return route()

    def resolve(
        self, method: str, path: str, authorization: str | None
    ) -> tuple[dict[str, str], bytes]:
        """A file download, `/spaces/{id}/resolve/{revision}/{file}`: headers and body."""
        self.requests.append(RecordedRequest(method, path, authorization, None))
        user = self._authenticate(authorization)
        parts = path.strip("/").split("/")
        space = self._readable("/".join(parts[1:3]), user)
        commit, files = space.files_at(unquote(parts[4]))
        name = unquote("/".join(parts[5:]))
        if name not in files:
            raise _Reply(
                404,
                f"Entry not found: {name}",
                code="EntryNotFound",
                headers={"X-Repo-Commit": commit},
            )
        content = files[name]
        headers = {
            "X-Repo-Commit": commit,
            "ETag": f'"{_git_oid(content)}"',
            "Content-Type": "application/octet-stream",
            "Content-Length": str(len(content)),
        }
        return headers, content

    def _authenticate(self, authorization: str | None) -> User | None:
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        user = self.users.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            raise _Reply(401, "Invalid credentials in Authorization header")
        return user

    def _readable(self, space_id: str, user: User | None) -> Space:
        return visible(self.spaces.get(space_id), user)

    def _writer(self, space: Space, user: User | None) -> User:
        if user is None:
            raise _Reply(401, "You must be authenticated to access this resource")
        if user.role != "write" or not user.owns(space.owner):
            raise _Reply(403, f"You don't have the rights to modify {space.id}")
        return user

    def _quota(self, user: User | None) -> dict[str, Any]:
        if user is None:
            raise _Reply(401, "You must be authenticated to access this resource")
        if not user.billing:
            raise _Reply(403, "This token does not have the permission to read billing usage")
        return user.zero_gpu.to_json()

    def _pause(self, space: Space, user: User | None) -> dict[str, Any]:
        self._writer(space, user)
        space.stages = ["PAUSED"]
        return space.runtime(advance=False)

    def _restart(self, space: Space, user: User | None) -> dict[str, Any]:
        self._writer(space, user)
        space.stages = list(self.restart_stages)
        space.starting_until = time.monotonic() + self.start_seconds
        return space.runtime(advance=False)

    def _whoami(self, user: User | None) -> dict[str, Any]:
        if user is None:
            raise _Reply(401, "Invalid username or password.")
        return {
            "type": "user",
            "id": f"id-{user.name}",
            "name": user.name,
            "fullname": user.name,
            "isPro": False,
            "canPay": False,
            "emailVerified": True,
            "orgs": [{"type": "org", "name": org} for org in user.orgs],
            "auth": {
                "type": "access_token",
                "accessToken": {"displayName": "test", "role": user.role},
            },
        }

    def _duplicate(self, source: Space, user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        if user is None:
            raise _Reply(401, "You must be authenticated to access this resource")
        target_id = body["repository"]
        namespace = target_id.split("/", 1)[0]
        if user.role != "write" or not user.owns(namespace):
            raise _Reply(403, f"You don't have the rights to create a Space under {namespace}")
        url = f"{self.url}/spaces/{target_id}"
        if target_id in self.spaces:
            raise _Reply(409, "You already created this space repo", url=url)
        hardware = body.get("hardware") or "cpu-basic"
        if hardware not in HARDWARE:
            raise _Reply(400, f"Invalid hardware flavor: {hardware}")
        sleep = body.get("sleepTimeSeconds")
        self.spaces[target_id] = Space(
            id=target_id,
            private=body.get("visibility", "private" if source.private else "public") != "public",
            host=self.duplicate_host(target_id),
            hardware=None,  # nothing runs until the first build is done
            requested_hardware=hardware,
            sleep_time=FREE_SLEEP_SECONDS if hardware == "cpu-basic" else sleep,
            stages=list(self.duplicate_stages),
            secrets={s["key"]: s["value"] for s in body.get("secrets") or []},
            duplicated_from=source.id,
            starting_until=time.monotonic() + self.start_seconds,
        )
        return {"url": url}

    def _secrets(self, space: Space, user: User | None) -> dict[str, Any]:
        self._writer(space, user)
        return {
            key: {"description": None, "updatedAt": "2025-01-01T00:00:00.000Z"}
            for key in space.secrets
        }

    def _add_secret(self, space: Space, user: User | None, body: dict[str, Any]) -> None:
        self._writer(space, user)
        space.secrets[body["key"]] = body["value"]

    def _hardware(self, space: Space, user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        self._writer(space, user)
        if body.get("flavor") not in HARDWARE:
            raise _Reply(400, f"Invalid hardware flavor: {body.get('flavor')}")
        space.requested_hardware = body["flavor"]
        if "sleepTimeSeconds" in body:
            space.sleep_time = body["sleepTimeSeconds"]
        return space.runtime(advance=False)

    def _sleeptime(self, space: Space, user: User | None, body: dict[str, Any]) -> dict[str, Any]:
        self._writer(space, user)
        space.sleep_time = body["seconds"]
        return space.runtime(advance=False)


def _body(raw: bytes, content_type: str, query: str) -> Any:
    """A request's body as the route reads it: JSON, NDJSON lines (a commit), or a form
    (`paths-info`), merged with the query string for GETs that carry their options there."""
    if content_type.startswith("application/x-ndjson"):
        return [json.loads(line) for line in raw.splitlines() if line.strip()]
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v if k == "paths" else v[-1] for k, v in parse_qs(raw.decode()).items()}
    if raw:
        return json.loads(raw)
    return {k: v[-1] for k, v in parse_qs(query).items()} if query else None


def _handler_for(hub: HubServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # huggingface_hub keeps connections alive

        def setup(self) -> None:
            super().setup()
            with hub._lock:
                hub._connections.add(self.connection)

        def finish(self) -> None:
            with hub._lock:
                hub._connections.discard(self.connection)
            super().finish()

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def _serve(self, method: str) -> None:
            path = urlsplit(self.path).path
            if path.startswith("/datasets/") and "/resolve/" in path:
                self._serve_dataset_file(method, path)
                return
            if path.startswith("/spaces/") and "/resolve/" in self.path:
                self._serve_file(method)
                return
            self._serve_json(method)

        def _serve_dataset_file(self, method: str, path: str) -> None:
            authorization = self.headers.get("Authorization")
            try:
                with hub._lock:
                    hub.requests.append(RecordedRequest(method, path, authorization, None))
                    user = hub._authenticate(authorization)
                    status, headers, body = hub.dataset_routes.resolve(
                        method, path.strip("/").split("/"), user, self.headers.get("Range")
                    )
            except _Reply as reply:
                self._send(reply.status, {"error": reply.error}, reply)
                return
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def _serve_file(self, method: str) -> None:
            try:
                with hub._lock:
                    headers, body = hub.resolve(
                        method, urlsplit(self.path).path, self.headers.get("Authorization")
                    )
            except _Reply as reply:
                self._send(reply.status, {"error": reply.error}, reply)
                return
            self.send_response(200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

        def _serve_json(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path, query = urlsplit(self.path).path, urlsplit(self.path).query
            body = _body(raw, self.headers.get("Content-Type") or "", query)
            try:
                with hub._lock:
                    payload = hub.handle(
                        method, path, self.headers.get("Authorization"), body, query
                    )
            except _Reply as reply:
                self._send(reply.status, {"error": reply.error, **reply.extra}, reply)
            else:
                self._send(200, payload, None)

        def _rate_headers(self) -> dict[str, str]:
            with hub._lock:
                return hub.rate_headers()

        def _send(self, status: int, payload: Any, reply: _Reply | None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            headers = reply.headers if reply is not None and reply.headers else None
            for name, value in (headers or self._rate_headers()).items():
                self.send_header(name, value)
            if reply is not None:
                self.send_header("X-Error-Message", reply.error)
                if reply.code is not None:
                    self.send_header("X-Error-Code", reply.code)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded in hub.requests instead

    return Handler
