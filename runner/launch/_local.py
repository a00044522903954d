"""Local replicas: N copies of a Gradio app script, started and stopped by spacerun.

    spec = LocalAppSpec(script=Path("transcribe.py"), count=2)
    async with LocalApps(spec, log_dir=run_folder / "logs", on_status=print) as apps:
        ...  # apps.urls == ["http://127.0.0.1:41873", "http://127.0.0.1:40219"]

Each copy runs `python script [args]` in the script's folder on a free loopback port
(`GRADIO_SERVER_PORT`), in its own process group, with stdout and stderr appended to
`log_dir/local-<index>.log`. A copy is ready when GET /config answers 200 (or 401, for
an app behind a login: the server is up, the client logs in later). On the way out every
copy's process group gets SIGTERM, 5 s of grace, then SIGKILL.

No copy outlives spacerun, however it ends:

- normal exit, an exception, cancellation: `__aexit__` stops the copies, shielded from
  the cancellation that brought it there.
- Ctrl-C: the copies are in their own session, so the terminal's SIGINT reaches only
  spacerun; before KeyboardInterrupt leaves `anyio.run`, the running tasks are
  cancelled and unwind through `__aexit__`. What is still running when the interpreter
  exits (after a second Ctrl-C during cleanup, say) is stopped by an `atexit` sweep.
- SIGTERM with its default disposition, `kill -9`, a crash of the interpreter: no Python
  code runs, so on Linux each copy asks the kernel, between fork and exec, for SIGKILL
  when its parent dies (`prctl(PR_SET_PDEATHSIG)`). Its trap: the "parent" is the
  *thread* that forked the copy, not the process. An `anyio.to_thread` worker is
  retired after 10 s idle and would take the copies with it, so copies are forked only
  from the event loop's thread: `_spawn` is called from async methods only, never from
  a worker thread. (A CLI that wants a graceful SIGTERM turns it into cancellation with
  `anyio.open_signal_receiver`; then the first path applies.)

Not covered: on macOS and other non-Linux systems there is no PR_SET_PDEATHSIG, so
after `kill -9` or an unhandled SIGTERM the copies keep running; each leads its own
process group (pgid = its pid, `LocalApp.pid`, logged at INFO), and `kill -- -PGID`
stops it. On every system, processes that the app itself starts survive a `kill -9`
of spacerun (the kernel signals only the direct child); the other paths kill the
copy's whole process group. The process plumbing itself is in `runner._procs`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import anyio
import httpx

from ..errors import RunnerError
from ._procs import (
    claim_port,
    describe_exit,
    free_port,
    log_tail,
    port_is_free,
    release_port,
    spawn,
    stop_group,
    wait_exit,
)

__all__ = ["LocalApp", "LocalAppError", "LocalAppSpec", "LocalApps"]

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_POLL_FIRST, _POLL_MAX, _POLL_GROWTH = 0.05, 0.5, 1.5  # readiness poll interval, s
_REQUEST_TIMEOUT = 5.0
_LOG_TAIL_LINES = 30
_PORT_ATTEMPTS = 3
# What gradio (and uvicorn under it) print when the port was taken in the meantime.
_PORT_CLASH_MARKERS = ("cannot find empty port", "address already in use")


class LocalAppError(RunnerError):
    """A local copy exited before it was ready, or did not answer in time.

    `str(err)` names the script, the copy, its port and exit code, and ends with the
    last lines of its log (a traceback's last line says what went wrong).
    """

    def __init__(
        self,
        message: str,
        *,
        script: Path,
        index: int | None = None,
        port: int | None = None,
        exit_code: int | None = None,
        log_path: Path | None = None,
        log_tail: str = "",
    ) -> None:
        self.script = script
        self.index = index
        self.port = port
        self.exit_code = exit_code
        self.log_path = log_path
        self.log_tail = log_tail
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalAppSpec:
    """What to start: `count` copies of `python script *args` with `env` added."""

    script: Path
    count: int = 1
    python: str | None = None  # default: the interpreter running spacerun
    env: Mapping[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    ready_timeout: float = 120.0
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}")
        if not self.ready_timeout > 0:
            raise ValueError(f"ready_timeout must be positive, got {self.ready_timeout}")


class _NotReady(Exception):
    """Internal: why a copy is not ready; turned into LocalAppError once it is stopped."""

    def __init__(self, why: str, *, port_clash: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.port_clash = port_clash


class LocalApp:
    """One running copy of the script. Made by `LocalApps`; `restart()` is its only action."""

    def __init__(
        self, spec: LocalAppSpec, *, index: int, log_path: Path, on_status: Callable[[str], None]
    ) -> None:
        self.index = index
        self.log_path = log_path
        self.port = 0
        self._spec = spec
        self._on_status = on_status
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this start's output begins in the log

    def __repr__(self) -> str:
        state = "alive" if self.alive() else "stopped"
        return f"<LocalApp {self.name} {self.url} {state}>"

    @property
    def name(self) -> str:
        return f"local-{self.index}"

    @property
    def url(self) -> str:
        return f"http://{self._spec.host}:{self.port}"

    @property
    def pid(self) -> int:
        """The pid (and process group id) of the current, or last, process."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc.pid

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    async def restart(self) -> None:
        """Stop this copy (if running) and start it again, on the same port if it is
        still free; waits until it is ready. Raises LocalAppError like `LocalApps`."""
        self._on_status(f"restarting {self.name}…")
        with anyio.CancelScope(shield=True):
            await self._stop()
        await self._start()

    # -- starting ------------------------------------------------------------

    async def _start(self) -> None:
        """Spawn and wait until ready, picking another port if the port was taken."""
        began = anyio.current_time()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            if not self.port or not port_is_free(self._spec.host, self.port):
                self._set_port(free_port(self._spec.host))
            try:
                self._spawn()
                await self._wait_ready()
            except _NotReady as not_ready:
                with anyio.CancelScope(shield=True):
                    await self._stop()
                if not_ready.port_clash and attempt < _PORT_ATTEMPTS:
                    log.info("%s: port %d was taken, trying another", self.name, self.port)
                    self._set_port(0)
                    continue
                raise self._error(not_ready.why) from None
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._stop()
                raise
            took = anyio.current_time() - began
            self._on_status(f"{self.name} ready at {self.url} ({took:.1f} s)")
            return

    def _set_port(self, port: int) -> None:
        release_port(self.port)
        self.port = port
        if port:
            claim_port(port)

    def _command(self) -> list[str]:
        python = self._spec.python or sys.executable
        # A relative interpreter path means relative to here, not to the script's folder.
        if os.sep in python:
            python = os.path.abspath(python)
        return [python, str(self._spec.script.resolve()), *self._spec.args]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
        env.update(self._spec.env)
        # Ours win: readiness and the replica's url depend on them.
        env.update(GRADIO_SERVER_NAME=self._spec.host, GRADIO_SERVER_PORT=str(self.port))
        return env

    def _spawn(self) -> None:
        # Runs on the event loop's thread (we are called from async code): PDEATHSIG
        # ties the child to the thread that forks it. See the module docstring.
        command = self._command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._log_offset = log_file.tell()
            # Before the fork: once the child runs, its output and ours would interleave.
            log_file.write(f"--- spacerun: port {self.port}: {' '.join(command)}\n".encode())
            log_file.flush()
            self._proc = None
            try:
                self._proc = spawn(
                    command,
                    cwd=self._spec.script.resolve().parent,
                    env=self._environment(),
                    log_file=log_file,
                )
            except OSError as error:  # no such interpreter, not executable, ...
                raise _NotReady(f"could not be started: {error}") from error
        log.info("%s: pid %d, port %d, log %s", self.name, self._proc.pid, self.port, self.log_path)

    async def _wait_ready(self) -> None:
        """Poll GET /config at a growing interval until it answers; raise _NotReady if
        the process exits first or the deadline passes. Wakes at once on an exit."""
        proc = self._running()
        deadline = anyio.current_time() + self._spec.ready_timeout
        delay = _POLL_FIRST
        async with httpx.AsyncClient(trust_env=False) as http:
            while True:
                if proc.poll() is not None:
                    clash = any(m in self._log_tail().lower() for m in _PORT_CLASH_MARKERS)
                    raise _NotReady("exited before it was ready", port_clash=clash)
                remaining = deadline - anyio.current_time()
                if await _answers(http, f"{self.url}/config", min(_REQUEST_TIMEOUT, remaining)):
                    return
                remaining = deadline - anyio.current_time()
                if remaining <= 0:
                    raise _NotReady(
                        f"did not answer GET {self.url}/config within "
                        f"{self._spec.ready_timeout:g} s (stopped it)"
                    )
                await wait_exit(proc, min(delay, remaining))
                delay = min(delay * _POLL_GROWTH, _POLL_MAX)

    def _running(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._proc

    def _log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines this start wrote to the log (earlier starts excluded)."""
        return log_tail(self.log_path, since=self._log_offset, lines=lines)

    def _error(self, why: str) -> LocalAppError:
        proc = self._proc
        code = None if proc is None else proc.returncode
        tail = self._log_tail()
        script = self._spec.script
        message = (
            f"local copy {self.name} of {script.name} ({script}) on port {self.port} {why}; "
            f"exit code {'none (it never ran)' if proc is None else describe_exit(code)}\n"
            f"last {_LOG_TAIL_LINES} lines of {self.log_path}:\n"
            + "\n".join(f"    {line}" for line in tail.splitlines())
        )
        return LocalAppError(
            message,
            script=script,
            index=self.index,
            port=self.port,
            exit_code=code,
            log_path=self.log_path,
            log_tail=tail,
        )

    # -- stopping ------------------------------------------------------------

    async def _stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM the process group, wait up to `grace` s, then SIGKILL the group (so
        nothing the app started survives it). Idempotent. Call it shielded."""
        proc = self._proc
        if proc is None:
            return
        if not await stop_group(proc, grace):
            # Left for the atexit sweep, which tries again.
            log.warning("%s (pid %d) did not die after SIGKILL", self.name, proc.pid)

    def _release(self) -> None:
        # Keep `port` (and `url`) readable after the run; only free the claim on it.
        if not self.alive():
            release_port(self.port)


class LocalApps:
    """`spec.count` copies of a Gradio app script, for the length of an `async with`.

    Entering starts all copies in parallel and waits until each is ready; if one exits
    early or misses `spec.ready_timeout`, all are stopped and LocalAppError is raised.
    Leaving (also by an exception or cancellation) stops them all. See the module
    docstring for how orphans are prevented when spacerun itself dies.
    """

    def __init__(
        self,
        spec: LocalAppSpec,
        *,
        log_dir: Path,
        on_status: Callable[[str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.log_dir = log_dir
        self._on_status = on_status or _ignore
        self.apps: list[LocalApp] = []

    def __repr__(self) -> str:
        alive = sum(app.alive() for app in self.apps)
        return f"<LocalApps {self.spec.script.name}: {alive}/{self.spec.count} alive>"

    @property
    def urls(self) -> list[str]:
        return [app.url for app in self.apps]

    async def __aenter__(self) -> LocalApps:
        script = self.spec.script
        if not script.is_file():
            raise LocalAppError(f"no app script at {script}", script=script)
        count = self.spec.count
        self._on_status(
            f"starting {count} local {'copy' if count == 1 else 'copies'} of {script.name}…"
        )
        self.apps = [
            LocalApp(
                self.spec,
                index=index,
                log_path=self.log_dir / f"local-{index}.log",
                on_status=self._on_status,
            )
            for index in range(1, count + 1)
        ]
        try:
            await self._start_all()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._stop_all()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with anyio.CancelScope(shield=True):
            await self._stop_all()
        count = len(self.apps)
        self._on_status(f"stopped {count} local {'copy' if count == 1 else 'copies'}")

    async def _start_all(self) -> None:
        # Collect the first failure ourselves rather than letting the task group wrap
        # it in an ExceptionGroup: the caller wants one LocalAppError.
        failures: list[LocalAppError] = []

        async def start(app: LocalApp, scope: anyio.CancelScope) -> None:
            try:
                await app._start()
            except LocalAppError as error:
                failures.append(error)
                scope.cancel()

        async with anyio.create_task_group() as group:
            for app in self.apps:
                group.start_soon(start, app, group.cancel_scope)
        if failures:
            raise failures[0]

    async def _stop_all(self) -> None:
        async with anyio.create_task_group() as group:
            for app in self.apps:
                group.start_soon(app._stop)
        for app in self.apps:
            app._release()


def _ignore(message: str) -> None:
    pass


async def _answers(http: httpx.AsyncClient, url: str, seconds: float) -> bool:
    try:
        response = await http.get(url, timeout=max(seconds, 0.1))
    except httpx.TransportError:
        return False
    return response.status_code in (200, 401)
