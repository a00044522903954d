"""A Ray cluster on this machine for the tests: `ray.cluster_utils.Cluster`, as Ray's
own tests use, with a head and added nodes, each `num_cpus=1` and two logical GPUs.

    with fake_cluster(nodes=2) as cluster:   # connected: ray.init(address=cluster.address)
        ...

Everything binds 127.0.0.1 (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 is Ray's switch for
"this machine only"), usage stats are off, object stores small, and the dashboard is off:
no dashboard on the head, and `support/ray_agent_stub.py` in place of each node's
dashboard agent (see there why). The runtime-environment agent, which ships the
`working_dir` of `ray:` replicas to the nodes, is Ray's own; each node keeps what it
installs in a folder of its own (see `_node` why).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from support import servers

AGENT_STUB = Path(__file__).resolve().parent / "ray_agent_stub.py"

NODE = {
    "num_cpus": 1,
    "num_gpus": 2,
    "object_store_memory": 80 * 1024 * 1024,
    "include_dashboard": False,
    "node_ip_address": "127.0.0.1",
}
#: Each node's folder of runtime environments, in the session folder (see `_node`).
_ENV_DIRS = (f"runtime_resources_{n}" for n in itertools.count())
ENV = {
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    # The runtime-env agent's start-up budget (the raylet's default is 30 s).
    "RAY_agent_register_timeout_ms": "180000",
}


@contextlib.contextmanager
def fake_cluster(nodes: int = 2) -> Iterator[Any]:
    servers.starting("a Ray cluster")
    with _environ(ENV):
        import ray
        import ray._private.ray_constants as ray_constants
        import ray._private.services as services
        from ray.cluster_utils import Cluster

        # Read once at import: this process may have imported Ray before.
        ray_constants.ENABLE_RAY_CLUSTER = False
        real = services._build_python_executable_command_memory_profileable

        def command(component: str, session_dir: str, unbuffered: bool = True) -> Any:
            if component == ray_constants.PROCESS_TYPE_DASHBOARD_AGENT:
                return [sys.executable, str(AGENT_STUB)]
            return real(component, session_dir, unbuffered)

        services._build_python_executable_command_memory_profileable = command
        cluster = Cluster(initialize_head=True, head_node_args=_node())
        try:
            for _ in range(nodes):
                cluster.add_node(**_node())
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, log_to_driver=False)
            yield cluster
        finally:
            ray.shutdown()
            cluster.shutdown()
            services._build_python_executable_command_memory_profileable = real


def add_node(cluster: Any) -> Any:
    with _environ(ENV):
        node = cluster.add_node(**_node())
        cluster.wait_for_nodes()
        return node


def _node() -> dict[str, Any]:
    # A port given up front: the raylet then connects to its runtime-env agent when it
    # listens, rather than waiting (15 s at most) for the agent to write its port file.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # A folder of runtime environments per node, as on machines of their own. Shared
    # (Ray's default on one machine), a node that installs a working_dir for the first
    # time deletes and unpacks it again (its agent always overwrites what its own cache
    # does not hold), under the workers and apps of the other nodes running in it: their
    # cwd is gone, and an actor starting there fails on os.getcwd() (FileNotFoundError).
    return {**NODE, "runtime_env_agent_port": port, "runtime_env_dir_name": next(_ENV_DIRS)}


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
