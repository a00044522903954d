"""A virtual environment for a Space run locally, made once and reused by content.

What goes in is what the Hub installs for a gradio Space: `gradio==<sdk_version>` (from
its README card) and its `requirements.txt`. The environment lives in spacerun's cache
(`$SPACERUN_CACHE_DIR`, else `$XDG_CACHE_HOME/spacerun`, else `~/.cache/spacerun`) under
`venvs/<hash>`, the hash of what went in (requirements, the interpreter and its version,
the inherit mode): the next run, or another Space with the same requirements, reuses it.
A marker file written last tells a finished environment from one whose install was
interrupted (which is made again); a lock keeps two spacerun processes from making the
same one at once.

The interpreter: `python:` of the replica if given; else `python<python_version>` from
PATH when the card asks for a version that is not spacerun's (with a message, and
spacerun's own Python, when there is no such interpreter); else spacerun's.

`inherit_packages` makes the environment see the packages of the interpreter's own
environment (a `.pth` file adds its site-packages after the new environment's own), so
pip installs only what is missing or pinned to another version there: minutes of
installing gradio and torch become seconds. The environment's own packages come first on
`sys.path`, so a pinned version wins over the inherited one; pip never uninstalls
inherited packages (they are outside the environment).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio

from ._procs import log_tail
from ._space import SpaceFiles
from ._spec import LocalAppError

__all__ = ["cache_dir", "choose_python", "space_environment"]

_READY = ".spacerun-ready"
_PTH = "_spacerun_inherited.pth"
_PROBE = (
    "import json, sys, sysconfig; print(json.dumps({'version': '%d.%d.%d' % sys.version_info[:3],"
    " 'paths': sorted({sysconfig.get_path('purelib'), sysconfig.get_path('platlib')})}))"
)
_PURELIB = "import sysconfig; print(sysconfig.get_path('purelib'))"
_TAIL = 15


def cache_dir() -> Path:
    explicit = os.environ.get("SPACERUN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "spacerun"


def choose_python(files: SpaceFiles, python: str | None, on_status: Callable[[str], None]) -> str:
    """The interpreter the Space's environment is made from (see the module docstring)."""
    if python is not None:
        return python
    wanted = files.card.python_version
    ours = f"{sys.version_info.major}.{sys.version_info.minor}"
    if wanted is None or wanted in (ours, sys.version.split()[0]):
        return sys.executable
    found = shutil.which(f"python{wanted}")
    if found is not None:
        return found
    on_status(
        f"Space {files.space} asks for Python {wanted} (python_version in its README), but "
        f"there is no python{wanted} on PATH: its environment uses Python {ours} "
        f"({sys.executable}); set python: for this replica to choose an interpreter"
    )
    return sys.executable


async def space_environment(
    files: SpaceFiles,
    *,
    python: str | None,
    inherit: bool,
    log_path: Path,
    on_status: Callable[[str], None],
) -> str:
    """The python of an environment with the Space's requirements installed, made if
    needed. Raises LocalAppError (with pip's last lines) when they do not install."""
    base = choose_python(files, python, on_status)
    probe = await _probe(base, files)
    requirements = _requirements(files)
    key = hashlib.sha256(
        json.dumps(
            {
                "requirements": requirements,
                "python": _real_path(base),
                "version": probe["version"],
                "inherit": probe["paths"] if inherit else None,
            },
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]
    root = cache_dir() / "venvs" / key
    venv_python = str(root / "bin" / "python")
    if (root / _READY).is_file():
        on_status(f"Space {files.space}: reusing its environment {root}")
        return venv_python
    root.parent.mkdir(parents=True, exist_ok=True)
    async with _locked(root.with_suffix(".lock")):
        if (root / _READY).is_file():  # made by another spacerun meanwhile
            return venv_python
        shutil.rmtree(root, ignore_errors=True)  # an interrupted earlier attempt
        on_status(
            f"Space {files.space}: installing its requirements into {root} "
            f"(pip's output: {log_path})"
        )
        began = anyio.current_time()
        await _make(base, root, probe["paths"] if inherit else None, files, log_path)
        await _install(venv_python, root, requirements, files, log_path)
        (root / _READY).write_text(requirements, encoding="utf-8")
        on_status(f"Space {files.space}: environment ready ({anyio.current_time() - began:.0f} s)")
    return venv_python


def _real_path(python: str) -> str:
    return os.path.realpath(shutil.which(python) or python)


def _requirements(files: SpaceFiles) -> str:
    lines = []
    card = files.card
    if card.sdk_version and (card.sdk in (None, "gradio")):
        lines.append(f"gradio=={card.sdk_version}")
    lines.append(files.requirements.strip())
    return "\n".join(line for line in lines if line) + "\n"


async def _probe(base: str, files: SpaceFiles) -> dict[str, Any]:
    try:
        result = await anyio.run_process([base, "-c", _PROBE], check=False)
    except OSError as error:
        raise LocalAppError(
            f"Space {files.space}: cannot run the interpreter {base!r} for its environment: "
            f"{error}; check python: for this replica",
            script=files.app,
        ) from None
    if result.returncode != 0:
        raise LocalAppError(
            f"Space {files.space}: the interpreter {base!r} failed: "
            f"{result.stderr.decode(errors='replace').strip()[-300:]}; check python:",
            script=files.app,
        )
    data: dict[str, Any] = json.loads(result.stdout)
    return data


async def _make(
    base: str, root: Path, inherited: list[str] | None, files: SpaceFiles, log_path: Path
) -> None:
    # With inherited packages, pip comes from the inherited environment too.
    command = [base, "-m", "venv", *(["--without-pip"] if inherited else []), str(root)]
    await _run(command, log_path, files, "creating its environment")
    if inherited:
        purelib = await anyio.run_process(
            [
                str(root / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_path('purelib'))",
            ]
        )
        site = Path(purelib.stdout.decode().strip())
        # addsitedir, not a bare path: the inherited folders' own .pth files (editable
        # installs, say) are read too.
        lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in inherited)
        (site / _PTH).write_text(lines, encoding="utf-8")


async def _install(
    venv_python: str, root: Path, requirements: str, files: SpaceFiles, log_path: Path
) -> None:
    if not requirements.strip():
        return
    listed = root / "spacerun-requirements.txt"
    listed.write_text(requirements, encoding="utf-8")
    command = [
        venv_python,
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "-r",
        str(listed),
    ]
    await _run(command, log_path, files, "installing its requirements")


async def _run(command: list[str], log_path: Path, files: SpaceFiles, doing: str) -> None:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log_file:
        offset = log_file.tell()
        log_file.write(f"--- spacerun: {' '.join(command)}\n".encode())
        log_file.flush()
        result = await anyio.run_process(
            command, stdout=log_file, stderr=log_file, check=False, cwd=files.folder
        )
    if result.returncode == 0:
        return
    tail = log_tail(log_path, since=offset, lines=_TAIL)
    raise LocalAppError(
        f"Space {files.space}: {doing} failed (exit code {result.returncode}); fix or pin the "
        f"requirements (its requirements.txt, gradio=={files.card.sdk_version or '?'} from "
        f"its README), or give python: an interpreter whose environment has them.\n"
        f"last {_TAIL} lines of {log_path}:\n"
        + "\n".join(f"    {line}" for line in tail.splitlines()),
        script=files.app,
        log_path=log_path,
        log_tail=tail,
    )


@contextlib.asynccontextmanager
async def _locked(path: Path) -> AsyncIterator[None]:
    with path.open("a") as handle:
        # Waits only while another spacerun makes this same environment.
        await anyio.to_thread.run_sync(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
