"""A local stand-in for the Hugging Face Hub's Space API, for tests.

It answers the routes huggingface_hub 2.4 calls for the functions `jobs._spaces` uses,
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
import json
import socket
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from .servers import starting

__all__ = ["FREE_SLEEP_SECONDS", "HARDWARE", "HubServer", "RecordedRequest", "Space", "User"]

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

    def info(self) -> dict[str, Any]:
        return {
            "_id": f"id-{self.subdomain}",
            "id": self.id,
            "author": self.owner,
            "sha": "0" * 40,
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
            "siblings": [{"rfilename": "README.md"}, {"rfilename": "app.py"}],
        }


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    authorization: str | None
    body: Any


class _Reply(Exception):
    """Raised by a route to answer with an error status (the Hub's error shape)."""

    def __init__(self, status: int, error: str, *, code: str | None = None, **extra: Any):
        super().__init__(error)
        self.status, self.error, self.code, self.extra = status, error, code, extra


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
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

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

    def handle(self, method: str, path: str, authorization: str | None, body: Any) -> Any:
        """Answer one request (called under the lock); raises _Reply for errors."""
        self.requests.append(RecordedRequest(method, path, authorization, body))
        user = self._authenticate(authorization)
        parts = path.strip("/").split("/")
        if parts == ["api", "whoami-v2"] and method == "GET":
            return self._whoami(user)
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
        }
        route = routes.get((method, action))
        if route is None:
            raise _Reply(404, "Sorry, we can't find the page you are looking for.")
        return route()

    def _authenticate(self, authorization: str | None) -> User | None:
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        user = self.users.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            raise _Reply(401, "Invalid credentials in Authorization header")
        return user

    def _readable(self, space_id: str, user: User | None) -> Space:
        space = self.spaces.get(space_id)
        if space is None or (space.private and (user is None or not user.owns(space.owner))):
            # The Hub hides private repos: same answer as missing, 401 when anonymous.
            raise _Reply(401 if user is None else 404, "Repository not found", code="RepoNotFound")
        return space

    def _writer(self, space: Space, user: User | None) -> User:
        if user is None:
            raise _Reply(401, "You must be authenticated to access this resource")
        if user.role != "write" or not user.owns(space.owner):
            raise _Reply(403, f"You don't have the rights to modify {space.id}")
        return user

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

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = urlsplit(self.path).path
            try:
                with hub._lock:
                    payload = hub.handle(method, path, self.headers.get("Authorization"), body)
            except _Reply as reply:
                self._send(reply.status, {"error": reply.error, **reply.extra}, reply)
            else:
                self._send(200, payload, None)

        def _send(self, status: int, payload: Any, reply: _Reply | None) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            if reply is not None:
                self.send_header("X-Error-Message", reply.error)
                if reply.code is not None:
                    self.send_header("X-Error-Code", reply.code)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded in hub.requests instead

    return Handler
