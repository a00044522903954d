"""Virtualenvs with older gradio servers and the reference gradio_client releases.

    python = venv_python("4.16.0")          # builds .old-gradio/4.16.0-<hash>/ once
    python = venv_python("gc-2.7.2")        # gradio_client 2.7.2, the reference client
    app = start_old_app("4.16.0")           # tests/old_gradio/apps/seed.py on gradio 4.16

Each venv is installed from the exact dependency set in `tests/old_gradio/<name>.txt`
(`pip install --no-deps -r`), so a fresh machine gets what was checked to start; see
that folder's README for where the sets come from. The venvs live in `.old-gradio/` at
the repository root (ignored by git), named after the set's content hash: an edited
set builds a new venv. A venv counts only once its `complete` marker is written (after
the install and an import check), so a build interrupted half-way is redone; builds
hold a file lock, so two pytest processes racing for one venv build it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from .apps import RunningApp, _prepare
from .servers import starting

ROOT = Path(__file__).resolve().parents[2]
PINS_DIR = ROOT / "tests" / "old_gradio"
#: Apps written for the old releases (they run on the newer ones too).
OLD_APPS_DIR = PINS_DIR / "apps"
CACHE_DIR = ROOT / ".old-gradio"
#: Every gradio server release the tests run, oldest first, with the protocol it speaks.
SERVERS = {
    "3.50.2": "ws",
    "4.8.0": "sse",
    "4.16.0": "sse_v1",
    "4.20.0": "sse_v2",
    "4.21.0": "sse_v2.1",
    "4.44.1": "sse_v3",
    "5.50.0": "sse_v3",
}
#: The reference clients: 2.7.2 for 4.x and later, 1.13.3 (websockets 13.1) for 3.x.
CLIENTS = ("gc-2.7.2", "gc-1.13.3")
#: A build downloads wheels; installing one set takes minutes on a cold pip cache.
BUILD_TIMEOUT = 1800.0


class OldGradioError(RuntimeError):
    """A venv could not be built (pip failed, or its package does not import)."""


def pins_path(name: str) -> Path:
    path = PINS_DIR / f"{name}.txt"
    if not path.is_file():
        known = sorted(p.stem for p in PINS_DIR.glob("*.txt"))
        raise ValueError(f"no dependency set {name!r} in {PINS_DIR}; known: {', '.join(known)}")
    return path


def venv_dir(name: str) -> Path:
    digest = hashlib.sha256(pins_path(name).read_bytes()).hexdigest()[:10]
    return CACHE_DIR / f"{name}-{digest}"


def _python_of(venv: Path) -> Path:
    return venv / "bin" / "python"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def venv_python(name: str) -> str:
    """The interpreter of the venv for dependency set `name` (a gradio version such as
    "4.16.0", or "gc-2.7.2"), building the venv first if it is not complete."""
    venv = venv_dir(name)
    marker = venv / "complete"
    if not marker.is_file():
        with _locked(CACHE_DIR / f"{name}.lock"):
            if not marker.is_file():  # another process may have built it meanwhile
                _build(name, venv)
    return str(_python_of(venv))


def _run(command: list[str], what: str) -> None:
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False
    )
    if done.returncode != 0:
        raise OldGradioError(
            f"{what} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )


def _build(name: str, venv: Path) -> None:
    started = time.monotonic()
    shutil.rmtree(venv, ignore_errors=True)  # a half-built venv from an interrupted run
    print(f"building {venv.name} from {pins_path(name).name} ...", file=sys.stderr)
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], f"venv {venv}")
    python = str(_python_of(venv))
    # Our own pip installs into the new venv (`--python`): no pip bootstrap per venv.
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            python,
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "-r",
            str(pins_path(name)),
        ],
        f"pip install -r {pins_path(name).name}",
    )
    module = "gradio_client" if name.startswith("gc-") else "gradio"
    _run([python, "-c", f"import {module}"], f"import {module} in {venv}")
    (venv / "complete").write_text(f"{time.monotonic() - started:.1f} s to build\n")
    print(f"built {venv.name} in {time.monotonic() - started:.0f} s", file=sys.stderr)


def build_all(names: list[str] | None = None) -> dict[str, float]:
    """Build every venv (or `names`) that is not complete; seconds each build took."""
    took: dict[str, float] = {}
    for name in names or [*SERVERS, *CLIENTS]:
        started = time.monotonic()
        venv_python(name)
        took[name] = time.monotonic() - started
    return took


def start_old_apps(
    versions: list[str], app: str = "seed", *, ready_timeout: float = 180
) -> list[RunningApp]:
    """Start `tests/old_gradio/apps/<app>.py` under each gradio version's venv, all at
    once (each import of gradio takes seconds), on free ports."""
    pythons = [venv_python(version) for version in versions]  # built one after another
    script = str(OLD_APPS_DIR / f"{app}.py")
    started = [_prepare(script, None, python, ready_timeout) for python in pythons]
    starting(f"gradio {', '.join(versions)} ({app}.py)")
    try:
        for running in started:
            running._spawn()
        for running in started:
            running._wait_ready()
    except BaseException:
        for running in started:
            running.stop(remove_workdir=False)
        raise
    return started


class OldApps:
    """Old-gradio apps shared by a test session: each (version, app) starts once, on
    first use. `wanted` versions of the seed app (the one app written for every version)
    are started together with the first one asked for; an app written for one version
    (`gradio3`) starts alone."""

    def __init__(self, wanted: list[str] | None = None) -> None:
        self.wanted = list(wanted or [])
        self._running: dict[tuple[str, str], RunningApp] = {}

    def get(self, version: str, app: str = "seed") -> RunningApp:
        if (version, app) not in self._running:
            along = self.wanted if app == "seed" else []
            batch = [v for v in dict.fromkeys([version, *along]) if (v, app) not in self._running]
            for v, running in zip(batch, start_old_apps(batch, app), strict=True):
                self._running[(v, app)] = running
        return self._running[(version, app)]

    def stop_all(self) -> None:
        for running in self._running.values():
            running.stop()


def start_old_app(version: str, app: str = "seed") -> RunningApp:
    (running,) = start_old_apps([version], app)
    return running


if __name__ == "__main__":  # PYTHONPATH=tests python -m support.old_gradio [NAME ...]
    for built, seconds in build_all(sys.argv[1:] or None).items():
        print(f"{built}: {seconds:.0f} s", flush=True)
