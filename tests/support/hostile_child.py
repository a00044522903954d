"""One `jobs` client call in a process of its own, so its peak memory is measured alone.

    report = measure(spec, cwd=folder, env=env, timeout=100)   # in the parent
    python tests/support/hostile_child.py '{"url": ..., "action": "predict", ...}'

The JSON names the app `url`, the `action` (`connect`: open the client and read the
API; `predict`: also call `api_name` with `args`), the client's `limits` (keyword
arguments of `jobs.Limits`) and the `downloads` folder. The last line printed is a JSON
report: the error's class, message and limit (if any), the result, the peak RSS in MB
and the seconds taken. The address space is capped (2 GiB) so that a regression fails
the case instead of exhausting the machine (`support.measure`, which also takes the peak
memory from the kernel, so a child killed at the timeout is measured too).
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: `support` is its parent's package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from support.measure import run_measured


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
    done = run_measured(
        [sys.executable, __file__, json.dumps(spec)], cwd=cwd, env=env, timeout=timeout
    )
    lines = done.out.strip().splitlines()
    report: dict[str, Any]
    if done.returncode == 0 and lines:
        report = json.loads(lines[-1])
    else:
        report = {"error": "killed" if done.killed else "crashed", "limit": None}
        report["message"] = done.err[-2000:]
        report["seconds"] = done.seconds
    report["returncode"] = done.returncode
    report["peak_mb"] = done.peak_mb
    return report


if __name__ == "__main__":
    print(json.dumps(run(json.loads(sys.argv[1])), default=str), flush=True)
