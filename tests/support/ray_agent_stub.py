"""Stands in for Ray's dashboard agent on the test cluster's nodes: `--dashboard off`.

The raylet starts a dashboard agent per node and waits a hard-coded 15 s for its port
files; on a busy 2-core machine the agent's Python start-up alone can take longer, and
the node dies at birth. The dashboard and metrics are not what the tests look at, so
this writes the port files at once with -1 ("service not in use", what Ray's minimal
agent writes for the services it does not run) and stays alive, as the raylet expects
of its agent, until the raylet is gone.

    python ray_agent_stub.py <the real agent's path and arguments>
"""

from __future__ import annotations

import os
import sys
import time

PORTS = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port")


def option(name: str) -> str:
    prefix = f"--{name}="
    return next(a[len(prefix) :] for a in sys.argv if a.startswith(prefix))


def main() -> None:
    node_id, session_dir = option("node-id"), option("session-dir")
    for port in PORTS:
        path = os.path.join(session_dir, f"{port}_{node_id}")
        with open(path + ".tmp", "w") as out:
            out.write("-1")
        os.replace(path + ".tmp", path)
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(0.5)


if __name__ == "__main__":
    main()
