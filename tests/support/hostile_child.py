"""One `jobs` client call in a process of its own, so its peak memory is measured alone.

    report = measure(spec, cwd=folder, env=env, timeout=100)   # in the parent
    python tests/support/hostile_child.py '{"url": ..., "action": "predict", ...}'

The JSON names the app `url`, the `action` (`connect`: open the client and read the
API; `predict`: also call `api_name` with `args`), the client's `limits` (keyword
arguments of `jobs.Limits`) and the `downloads` folder. The last line printed is a JSON
report: the error's class, message and limit (if any), the result, the peak RSS in MB
and the seconds taken. The address space is capped (2 GiB) so that a regression fails
the case instead of exhausting the machine. `measure` runs the child and takes its peak
memory from the kernel (`wait4`), so a child killed at the timeout is measured too.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

_ADDRESS_SPACE = 2 << 30


def run(spec: dict[str, Any]) -> dict[str, Any]:
    from jobs import Client

    options: dict[str, Any] = {"download_files": spec["downloads"]}
    if spec.get("limits"):  # only then: an older `jobs` without Limits runs the rest
        from jobs import Limits  # type: ignore[attr-defined, unused-ignore]

        options["limits"] = Limits(**spec["limits"])
    started = time.monotonic()
    report: dict[str, Any] = {"error": None, "message": None, "limit": None, "result": None}
    try:
        with Client(spec["url"], **options) as client:
            if spec["action"] == "predict":
                args = spec.get("args", [])
                report["result"] = client.predict(*args, api_name=spec["api_name"])
    except Exception as exc:  # the report is the point: every failure is written down
        report["error"] = type(exc).__name__
        report["message"] = str(exc)
        report["limit"] = getattr(exc, "limit", None)
    report["seconds"] = round(time.monotonic() - started, 2)
    report["peak_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return report


def measure(
    spec: dict[str, Any], *, cwd: Path, env: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Run `spec` in a child: its report, with `peak_mb` as the kernel counted it. A child
    still running after `timeout` s is killed and reported as `killed`."""
    child = subprocess.Popen(
        [sys.executable, __file__, json.dumps(spec)],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    outputs: dict[str, str] = {}
    readers = [
        threading.Thread(target=lambda n=n, f=f: outputs.__setitem__(n, f.read()))
        for n, f in (("out", child.stdout), ("err", child.stderr))
    ]
    for reader in readers:
        reader.start()
    started = time.monotonic()
    timer = threading.Timer(timeout, os.kill, (child.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, usage = os.wait4(child.pid, 0)  # reaps it, with its own rusage
    finally:
        timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    lines = outputs.get("out", "").strip().splitlines()
    report: dict[str, Any] = {}
    if child.returncode == 0 and lines:
        report = json.loads(lines[-1])
    else:
        killed = child.returncode == -signal.SIGKILL
        report = {"error": "killed" if killed else "crashed", "limit": None}
        report["message"] = outputs.get("err", "")[-2000:]
        report["seconds"] = round(time.monotonic() - started, 2)
    report["returncode"] = child.returncode
    report["peak_mb"] = round(usage.ru_maxrss / 1024, 1)
    return report


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_AS, (_ADDRESS_SPACE, _ADDRESS_SPACE))
    print(json.dumps(run(json.loads(sys.argv[1])), default=str), flush=True)
