"""Running `spacerun` as a user does: a subprocess of this interpreter, from the repo."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from .servers import starting

ROOT = Path(__file__).resolve().parent.parent.parent


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def spacerun(
    *args: str, timeout: float = 90, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `spacerun ARGS...` to the end and return what it printed and its exit code;
    `env` is added to the environment."""
    starting("a spacerun subprocess")
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**cli_env(), **(env or {})},
    )


def spacerun_popen(*args: str, stderr: int = subprocess.PIPE) -> subprocess.Popen[str]:
    """`spacerun ARGS...` started in a subprocess, its output piped (`stderr`: its own
    pipe, or `subprocess.STDOUT`)."""
    starting("a spacerun subprocess")
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli", *args],
        cwd=ROOT,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )


class SpacerunProcess:
    """`spacerun run MANIFEST ARGS...` in a subprocess, its output lines read as they
    come: to interrupt it, kill it with SIGKILL, and see what it said meanwhile."""

    def __init__(self, manifest: Path, *args: str) -> None:
        command = ["run", str(manifest), "--progress", "plain", *args]
        self.proc = spacerun_popen(*command, stderr=subprocess.STDOUT)
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()

    def wait_line(self, *parts: str, timeout: float = 90) -> str:
        """The first output line containing every one of `parts` (waits for it)."""

        def found() -> str | None:
            return next((s for s in self.lines if all(p in s for p in parts)), None)

        with self._seen:
            if not self._seen.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no line with {parts} in:\n{self.output()}")
            line = found()
            assert line is not None
            return line

    def interrupt(self) -> None:
        """A Ctrl-C."""
        self.proc.send_signal(signal.SIGINT)

    def kill9(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        return self.wait()

    def wait(self, timeout: float = 180) -> int:
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        """Kill it if it still runs (a test's way out)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
