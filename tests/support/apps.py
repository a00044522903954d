"""Start the Gradio apps of `tests/apps/` as subprocesses on free loopback ports.

    app = start_app("calculator")            # blocks until GET /config answers
    httpx.get(f"{app.url}/config")
    app.kill(); app.restart(); app.stop()    # or: with start_app(...) as app: ...

Each app runs in its own process group with its own work folder (log file, gradio
temp dir). The interpreter is `python=`, else $SPACERUN_TEST_APP_PYTHON, else this
one: pointing that variable at a venv made by `scripts/older_gradio.sh` runs the
same tests against an older gradio. No app outlives the test process: every app
is registered for an atexit sweep, and on Linux the app also gets SIGKILL when the
process that started it dies (PR_SET_PDEATHSIG), even if atexit never runs.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from .servers import starting

APPS_DIR = Path(__file__).resolve().parent.parent / "apps"
PYTHON_ENV_VAR = "SPACERUN_TEST_APP_PYTHON"
LOG_TAIL_CHARS = 4000

_live: set[RunningApp] = set()


class AppStartError(RuntimeError):
    """An app did not come up: it exited, or /config did not answer in time."""


def app_python(python: str | None = None) -> str:
    """The interpreter for app processes: argument, else env var, else ours."""
    chosen = python or os.environ.get(PYTHON_ENV_VAR) or sys.executable
    # A relative path means relative to here, not to the app's work folder.
    return os.path.abspath(chosen) if os.sep in chosen else chosen


def free_port() -> int:
    # The kernel picks a port that is free now; the app binds it a moment later.
    # A clash is possible but rare, and then the app fails loudly at startup.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. Linux only; elsewhere atexit must do.
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)


def _pdeathsig_safe() -> bool:
    # The signal fires when the *thread* that forked exits, so only the main thread
    # may use it (an anyio worker thread is reaped after a while of idling).
    return sys.platform == "linux" and threading.current_thread() is threading.main_thread()


@dataclass(eq=False, kw_only=True)
class RunningApp:
    """A Gradio app subprocess on 127.0.0.1; stop it with `stop()` or `with`."""

    name: str
    script: Path
    port: int
    python: str
    env: dict[str, str]
    workdir: Path
    ready_timeout: float
    config: dict[str, Any] | None = None  # /config at readiness (None if it said 401)
    scheme: str = "http"  # "https" when started with a certificate (`tls=`)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"app {self.name!r} is not running")
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        return self.workdir / "app.log"

    @property
    def gradio_version(self) -> str | None:
        return None if self.config is None else str(self.config.get("version"))

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-chars:]

    # -- lifecycle -----------------------------------------------------------

    def _spawn(self) -> None:
        script = self.script
        with self.log_path.open("ab") as log:
            log.write(f"--- starting {script.name} on port {self.port}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                [self.python, str(script)],
                cwd=self.workdir,  # gradio writes .gradio/ etc. into the cwd
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, killed as a whole
                preexec_fn=_die_with_parent if _pdeathsig_safe() else None,
            )
        _live.add(self)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        # A test certificate is self-signed.
        with httpx.Client(timeout=2.0, trust_env=False, verify=self.scheme == "http") as http:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    code = None if self._proc is None else self._proc.returncode
                    self._fail(f"exited with code {code} before answering /config")
                try:
                    response = http.get(f"{self.url}/config")
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code in (200, 401):
                    self.config = response.json() if response.status_code == 200 else None
                    return
                if time.monotonic() > deadline:
                    self._fail(f"did not answer /config within {self.ready_timeout:g} s")
                # Polling is the only readiness signal a separate process gives us.
                time.sleep(0.1)

    def _fail(self, why: str) -> None:
        tail = self.log_tail()
        self.stop(remove_workdir=False)
        raise AppStartError(
            f"app {self.name!r} ({self.python}) {why}; log {self.log_path}:\n{tail}"
        )

    def _signal_group(self, sig: signal.Signals) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, sig)

    def _terminate(self, *, grace: float) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and grace > 0:
            self._signal_group(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=grace)
        # SIGKILL the group even if the leader is gone: nothing it started survives.
        self._signal_group(signal.SIGKILL)
        proc.wait()
        self._proc = None

    def stop(self, *, remove_workdir: bool = True) -> None:
        """SIGTERM the app's process group, SIGKILL after 5 s. Idempotent."""
        self._terminate(grace=5.0)
        _live.discard(self)
        if remove_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def kill(self) -> None:
        """SIGKILL at once, like a server that dies; `restart()` brings it back."""
        self._terminate(grace=0)

    def restart(self) -> None:
        """Stop (if running) and start again on the same port; waits for /config."""
        self._terminate(grace=5.0)
        self._spawn()
        self._wait_ready()

    def __enter__(self) -> RunningApp:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _app_env(workdir: Path, port: int, extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GRADIO_SERVER_NAME="127.0.0.1",
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",  # no network here; avoid the call and its wait
        GRADIO_TEMP_DIR=str(workdir / "gradio"),
        HF_HUB_OFFLINE="1",
        PYTHONUNBUFFERED="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra or {})
    return env


def _prepare(
    name: str,
    env: Mapping[str, str] | None,
    python: str | None,
    ready_timeout: float,
    tls: tuple[Path, Path] | None = None,
) -> RunningApp:
    # A test app's name, or the path of any app script (e.g. a bundled sample app).
    script = Path(name) if name.endswith(".py") else APPS_DIR / f"{name}.py"
    if not script.is_file():
        known = sorted(p.stem for p in APPS_DIR.glob("[!_]*.py"))
        raise ValueError(f"no test app {name!r}; known apps: {', '.join(known)}")
    name = script.stem
    workdir = Path(tempfile.mkdtemp(prefix=f"spacerun-app-{name}-"))
    port = free_port()
    if tls is not None:
        certfile, keyfile = tls
        ssl_env = {
            "SPACERUN_TEST_SSL_CERTFILE": str(certfile),
            "SPACERUN_TEST_SSL_KEYFILE": str(keyfile),
        }
        env = {**(env or {}), **ssl_env}
    return RunningApp(
        name=name,
        script=script.resolve(),
        port=port,
        python=app_python(python),
        env=_app_env(workdir, port, env),
        workdir=workdir,
        ready_timeout=ready_timeout,
        scheme="http" if tls is None else "https",
    )


def start_app(
    name: str,
    *,
    env: dict[str, str] | None = None,
    python: str | None = None,
    ready_timeout: float = 90,
) -> RunningApp:
    """Start `tests/apps/<name>.py` (or the script at path `name`, ending in `.py`) on a
    free port and wait until /config answers.

    Raises AppStartError (with the app's log tail) if it exits or times out.
    """
    (app,) = start_apps([name], env=env, python=python, ready_timeout=ready_timeout)
    return app


def start_apps(
    names: Iterable[str],
    *,
    env: dict[str, str] | None = None,
    python: str | None = None,
    ready_timeout: float = 90,
    tls: tuple[Path, Path] | None = None,
) -> list[RunningApp]:
    """Start several apps at once (they import gradio in parallel), wait for all.
    `tls=(certfile, keyfile)` serves them over HTTPS.

    If one fails, the others are stopped before AppStartError propagates.
    """
    apps = [_prepare(name, env, python, ready_timeout, tls) for name in names]
    starting(f"the Gradio app(s) {', '.join(a.name for a in apps)}")
    try:
        for app in apps:
            app._spawn()
        for app in apps:
            app._wait_ready()
    except BaseException:
        for app in apps:
            app.stop(remove_workdir=False)
        raise
    return apps


@atexit.register
def _stop_all() -> None:
    for app in list(_live):
        app.stop()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id still exists (a zombie counts as existing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
