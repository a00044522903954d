"""Not an app: runs but never serves /config. For `runner.launch._local` readiness timeouts.

If $LOCAL_SLEEPER_REPORT_PORT is set, it first connects to 127.0.0.1 on that port and
sends its pid, so a test can wait for "the copy is running" as an event.
"""

from __future__ import annotations

import os
import socket
import time

report_port = os.environ.get("LOCAL_SLEEPER_REPORT_PORT")
if report_port:
    with socket.create_connection(("127.0.0.1", int(report_port))) as conn:
        conn.sendall(str(os.getpid()).encode())
print("local_sleeper: sleeping, never ready", flush=True)
time.sleep(3600)
