"""Running `spacerun` as the user nobody, from wherever this checkout sits.

Root ignores file permissions, so the permission tests run spacerun as nobody. nobody
must then reach the interpreter, the installed packages and the project itself, which it
cannot when the clone (and its `.venv`) sits in a folder private to its owner, such as one
made by `mktemp -d`. So nobody runs a readable copy instead: a virtual environment in a
world-readable temporary folder whose site-packages are hard links to this one's (no
data is copied) and a copy of `jobs` and `runner`. What cannot be provided that way is a
skip naming the reason.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

from .cli import ROOT

NOBODY = 65534


class CannotSwitchUser(Exception):
    """This machine cannot run spacerun as nobody; the message says why."""


def drop_to_nobody() -> list[str]:
    """The command prefix that runs a program as nobody."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise CannotSwitchUser("needs setpriv (util-linux) to run spacerun as another user")
    return [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


@functools.cache
def readable_runtime() -> tuple[str, Path]:
    """(python, project folder) that nobody can run and import spacerun from.

    Built once per test session and removed at exit."""
    # The interpreter the venv was made from (typeshed does not list this attribute).
    base = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    probe = subprocess.run(
        [*drop_to_nobody(), str(base), "-c", "import encodings"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    if probe.returncode != 0:
        raise CannotSwitchUser(
            f"the user nobody cannot run this interpreter ({base}): "
            f"{probe.stderr.strip().splitlines()[-1:] or probe.returncode}"
        )
    top = Path(tempfile.mkdtemp(prefix="spacerun-nobody-"))
    atexit.register(shutil.rmtree, top, ignore_errors=True)
    top.chmod(0o755)
    venv = top / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(base)
    (venv / "pyvenv.cfg").write_text(
        f"home = {base.parent}\ninclude-system-site-packages = false\n"
        f"version = {'.'.join(map(str, sys.version_info[:3]))}\n"
    )
    packages = [Path(p) for p in site.getsitepackages() if Path(p).is_dir()]
    if sys.prefix == sys.base_prefix or not packages:
        raise CannotSwitchUser("the tests do not run in a virtual environment to copy")
    # Where this venv keeps them (lib/pythonX.Y/site-packages), which is where the same
    # interpreter looks in the copy.
    try:
        purelib = venv / packages[0].relative_to(sys.prefix)
    except ValueError:
        raise CannotSwitchUser(f"{packages[0]} is outside the venv {sys.prefix}") from None
    purelib.parent.mkdir(parents=True)
    # Hard links: instant and no extra space; they need one filesystem for both.
    linked = subprocess.run(
        ["cp", "-al", str(packages[0]), str(purelib)], capture_output=True, text=True
    )
    if linked.returncode != 0:
        raise CannotSwitchUser(
            f"cannot hard-link {packages[0]} into {top} (another filesystem?): "
            f"{linked.stderr.strip()}"
        )
    project = top / "project"
    for package in ("jobs", "runner"):
        shutil.copytree(
            ROOT / package, project / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    # The copy keeps the clone's modes, which a private umask (077) leaves unreadable.
    for folder, dirs, files in os.walk(project):
        for name in dirs:
            (Path(folder) / name).chmod(0o755)
        for name in files:
            (Path(folder) / name).chmod(0o644)
    project.chmod(0o755)
    return str(venv / "bin" / "python"), project
