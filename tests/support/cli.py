"""Running `spacerun` as a user does: a subprocess of this interpreter, from the repo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .servers import starting

ROOT = Path(__file__).resolve().parent.parent.parent


def cli_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}


def spacerun(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    """Run `spacerun ARGS...` to the end and return what it printed and its exit code."""
    starting("a spacerun subprocess")
    return subprocess.run(
        [sys.executable, "-m", "runner.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=cli_env(),
    )
