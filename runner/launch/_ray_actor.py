"""What runs on a Ray node: the actor of one `ray:` replica, which starts the app there.

The actor starts the app script with the machinery of local replicas (`LocalApps`: its
own process group, `PR_SET_PDEATHSIG`, a log file, readiness on GET /config), bound to
the node's IP on a free port, and reports where it answers. The app is forked by the
thread that runs the actor's methods, which lives as long as the actor's worker
process: when Ray kills the actor (the run ended, its driver died, its node was lost),
the kernel kills the app with it. `stop()` ends the app's whole process group first,
which is what a run's normal end does.

This module is imported on the nodes (Ray pickles the actor class by reference), so
spacerun must be installed in the nodes' Python, as Ray itself is.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from ._local import LocalApps
from ._spec import DEFAULT_READY_TIMEOUT, LocalAppError, LocalAppSpec

__all__ = ["ActorInfo", "ActorSpec", "ReplicaActor"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorSpec:
    """What one actor starts: `python script *args`, the script inside its working_dir."""

    name: str
    script: str
    python: str | None = None
    args: tuple[str, ...] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorInfo:
    """Where a replica's app answers, on which node and GPUs; or why it does not."""

    url: str | None
    node_id: str
    host: str
    #: CUDA_VISIBLE_DEVICES as Ray set it for the actor (and so for the app).
    gpus: str | None
    pid: int | None
    log_path: str
    error: str | None = None


class ReplicaActor:
    """One replica's app on a Ray node. Ray makes it with `ray.remote(ReplicaActor)`;
    `__init__` starts the app (so a restarted actor starts it again, on its new node)."""

    def __init__(self, spec: ActorSpec) -> None:
        import ray

        self._spec = spec
        node_ip: Any = ray.util.get_node_ip_address  # untyped in Ray
        self._host: str = node_ip()
        self._node: str = ray.get_runtime_context().get_node_id()
        actor_id = ray.get_runtime_context().get_actor_id()
        self._log_dir = (
            Path(tempfile.gettempdir()) / "spacerun-ray-logs" / f"{spec.name}-{actor_id}"
        )
        self._apps: LocalApps | None = None
        self._error: str | None = None
        self._start()

    def info(self) -> ActorInfo:
        app = self._apps.apps[0] if self._apps is not None and self._apps.apps else None
        alive = app is not None and app.alive()
        return ActorInfo(
            url=app.url if alive and app is not None else None,
            node_id=self._node,
            host=self._host,
            gpus=os.environ.get("CUDA_VISIBLE_DEVICES"),
            pid=app.pid if alive and app is not None else None,
            log_path=str(self._log_dir / "local-1.log"),
            error=self._error if not alive else None,
        )

    def ensure_running(self) -> ActorInfo:
        """Start the app again if it died (the actor itself lives); where it answers."""
        app = self._apps.apps[0] if self._apps is not None and self._apps.apps else None
        if app is None:
            self._start()
        elif not app.alive():
            try:
                anyio.run(app.restart)
                self._error = None
            except LocalAppError as error:
                self._error = error.message
        return self.info()

    def stop(self) -> None:
        """Stop the app's process group (SIGTERM, a grace, SIGKILL)."""
        if self._apps is not None:
            anyio.run(self._apps.__aexit__, None, None, None)

    def _start(self) -> None:
        spec = LocalAppSpec(
            # Ray runs the actor in its working_dir: the script's folder, copied here.
            script=Path.cwd() / self._spec.script,
            python=self._spec.python or sys.executable,
            args=self._spec.args,
            # What the app may want to log: which replica it is, on which node.
            env={"SPACERUN_REPLICA": self._spec.name, "SPACERUN_RAY_NODE_ID": self._node},
            host=self._host,
            ready_timeout=self._spec.ready_timeout,
        )
        try:
            self._apps = start_app(spec, self._log_dir)
            self._error = None
        except LocalAppError as error:
            self._error = error.message


def start_app(spec: LocalAppSpec, log_dir: Path) -> LocalApps:
    """Start one copy of `spec`'s script and wait until it answers: the one call into
    the local-replica machinery (its process group, death signal and log file)."""
    apps = LocalApps(spec, log_dir=log_dir)
    anyio.run(apps.__aenter__)
    return apps
