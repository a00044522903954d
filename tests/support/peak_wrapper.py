"""Run `python -m MODULE ...`, `python -c CODE` or `python SCRIPT ...` and report the
peak resident memory of this process alone: `VmHWM` of /proc/self/status, which starts
afresh at exec (the kernel's `ru_maxrss` of a child also counts its parent's memory at
fork time). The report is the last line on stderr: `PEAK_KB=<n>`."""

from __future__ import annotations

import atexit
import resource
import runpy
import sys
from pathlib import Path


def _report() -> None:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                sys.stderr.write(f"\nPEAK_KB={line.split()[1]}\n")
                sys.stderr.flush()


if __name__ == "__main__":
    cap = int(sys.argv[1])
    if cap > 0:
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    mode, *rest = sys.argv[2:]
    target = rest.pop(0) if mode in ("-m", "-c") else mode
    # As `python -m`/`-c` would have it: the working folder first, not this one.
    sys.path[0] = "" if mode in ("-m", "-c") else str(Path(target).resolve().parent)
    atexit.register(_report)
    if mode == "-m":
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    elif mode == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = [target, *rest]
        runpy.run_path(target, run_name="__main__")
