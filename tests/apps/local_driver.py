"""Not an app: a stand-in for spacerun that owns local copies, for orphan tests.

    python local_driver.py SCRIPT COUNT LOG_DIR [--graceful-sigterm]

Starts COUNT copies of SCRIPT with `runner.launch._local.LocalApps`, prints one JSON line
{"pids": [...], "ports": [...]} once they are ready, then waits forever. Status lines
go to stderr. Ctrl-C (SIGINT) propagates as KeyboardInterrupt out of `anyio.run`.
SIGTERM keeps its default disposition (the process dies at once) unless
--graceful-sigterm turns it into cancellation, as a CLI would.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import anyio

from runner.launch import LocalApps, LocalAppSpec


def status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


async def cancel_on_sigterm(scope: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM) as signals:
        async for _ in signals:
            status("driver: SIGTERM, cancelling")
            scope.cancel()
            return


async def main(script: Path, count: int, log_dir: Path, graceful_sigterm: bool) -> None:
    spec = LocalAppSpec(script=script, count=count, ready_timeout=90)
    async with anyio.create_task_group() as group:
        if graceful_sigterm:
            group.start_soon(cancel_on_sigterm, group.cancel_scope)
        async with LocalApps(spec, log_dir=log_dir, on_status=status) as apps:
            pids = [app.pid for app in apps.apps]
            ports = [app.port for app in apps.apps]
            print(json.dumps({"pids": pids, "ports": ports}), flush=True)
            await anyio.sleep_forever()


if __name__ == "__main__":
    # The test runner may have started us with SIGINT ignored; Ctrl-C must work here.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    anyio.run(
        main,
        Path(sys.argv[1]),
        int(sys.argv[2]),
        Path(sys.argv[3]),
        "--graceful-sigterm" in sys.argv[4:],
    )
