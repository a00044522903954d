"""Run a command in a child process and measure its peak memory, as the kernel counts it.

    done = run_measured([sys.executable, "-m", "runner.cli", "validate", "m.yaml"],
                        cwd=folder, env=env, timeout=60)
    assert done.returncode == 2 and done.peak_mb < 150

The child is reaped with `wait4`, which hands back its own rusage (`ru_maxrss`), so the
figure is that process's alone, even when it is killed at the timeout (`killed`). Its
address space can be capped (`address_space`) so that a regression fails the case
instead of exhausting the machine.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Measured", "run_measured"]


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
    def cap() -> None:
        if address_space is not None:
            resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))

    started = time.monotonic()
    child = subprocess.Popen(
        list(command),
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=cap,
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
    return Measured(
        returncode=child.returncode,
        out=outputs.get("out", ""),
        err=outputs.get("err", ""),
        peak_mb=round(usage.ru_maxrss / 1024, 1),
        seconds=round(time.monotonic() - started, 2),
    )
