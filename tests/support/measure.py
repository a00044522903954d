"""Run a command in a child process and measure its peak memory, as the kernel counts it.

    done = run_measured([sys.executable, "-m", "runner.cli", "validate", "m.yaml"],
                        cwd=folder, env=env, timeout=60)
    assert done.returncode == 2 and done.peak_mb < 150

`command` is a Python command line (`sys.executable` then `-m`, `-c` or a script); it
runs under `peak_wrapper.py`, which reports the process's own peak (`VmHWM`): the
kernel's `ru_maxrss` of a child would also count this parent's memory at fork time. A
child killed at the timeout (`killed`) cannot report: its figure is then `ru_maxrss`,
an upper bound. The address space is capped (`address_space`) so that a regression
fails the case instead of exhausting the machine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measured", "run_measured"]

_WRAPPER = Path(__file__).resolve().parent / "peak_wrapper.py"


@dataclass(frozen=True)
class Measured:
    returncode: int
    out: str
    err: str
    peak_mb: float
    seconds: float

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL


def run_measured(
    command: Sequence[str],
    *,
    cwd: Path,
    env: dict[str, str],
    timeout: float,
    address_space: int | None = 2 << 30,
) -> Measured:
    python, *args = command
    wrapped = [python, str(_WRAPPER), str(address_space or 0), *args]
    started = time.monotonic()
    child = subprocess.Popen(
        wrapped,
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
    timer = threading.Timer(timeout, os.kill, (child.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, usage = os.wait4(child.pid, 0)  # reaps it, with its own rusage
    finally:
        timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    err = outputs.get("err", "")
    peak_kb = usage.ru_maxrss
    head, mark, tail = err.rpartition("\nPEAK_KB=")
    if mark:
        err, peak_kb = head, int(tail.strip())
    return Measured(
        returncode=child.returncode,
        out=outputs.get("out", ""),
        err=err,
        peak_mb=round(peak_kb / 1024, 1),
        seconds=round(time.monotonic() - started, 2),
    )
