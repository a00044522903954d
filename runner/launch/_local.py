"""Local replicas: N copies of a Gradio app script, started and stopped by spacerun.

    spec = LocalAppSpec(script=Path("transcribe.py"), count=2)
    async with LocalApps(spec, log_dir=folder.logs_dir, on_status=print) as apps:
        ...  # apps.urls == ["http://127.0.0.1:41873", "http://127.0.0.1:40219"]

Each copy runs the script under spacerun's bootstrap (`_command.app_command`: every
gradio `launch()` binds to the copy's free loopback port, whatever the script passes) in
the script's folder, in its own process group, with stdout and stderr appended to
`log_dir/local-<index>.log`, and, given `gpus`, its own `CUDA_VISIBLE_DEVICES`. It is
ready when its /config answers (`_ready`); meanwhile a progress line carries the last
line of its log. On the way out every copy's process group gets SIGTERM, 5 s of grace,
then SIGKILL.

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
copy's whole process group. The process plumbing itself is in `_procs`.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

import anyio

from ._command import app_command
from ._procs import (
    claim_port,
    describe_exit,
    free_port,
    log_tail,
    port_is_free,
    release_port,
    spawn,
    stop_group,
    without_launcher_frames,
)
from ._ready import NotReady, Startup
from ._spec import LocalAppError, LocalAppSpec

__all__ = ["LocalApp", "LocalAppError", "LocalAppSpec", "LocalApps"]

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_LOG_TAIL_LINES = 30
_PORT_ATTEMPTS = 3


class LocalApp:
    """One running copy of the script. Made by `LocalApps`; `restart()` is its only action."""

    def __init__(
        self,
        spec: LocalAppSpec,
        *,
        index: int,
        log_path: Path,
        on_status: Callable[[str], None],
        gpu: str | None = None,
    ) -> None:
        self.index = index
        self.log_path = log_path
        self.port = 0
        #: The CUDA_VISIBLE_DEVICES of this copy, or None.
        self.gpu = gpu
        self._spec = spec
        self._on_status = on_status
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where this start's output begins in the log

    def __repr__(self) -> str:
        state = "alive" if self.alive() else "stopped"
        gpu = f" gpu={self.gpu}" if self.gpu is not None else ""
        return f"<LocalApp {self.name} {self.url}{gpu} {state}>"

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
                await self._startup().wait()
            except NotReady as not_ready:
                with anyio.CancelScope(shield=True):
                    await self._stop()
                if not_ready.port_clash and attempt < _PORT_ATTEMPTS:
                    log.info("%s: port %d was taken, trying another", self.name, self.port)
                    self._set_port(0)
                    continue
                raise self._error(not_ready) from None
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await self._stop()
                raise
            took = anyio.current_time() - began
            where = f" on GPU {self.gpu}" if self.gpu is not None else ""
            self._on_status(f"{self.name} ready at {self.url}{where} ({took:.1f} s)")
            return

    def _set_port(self, port: int) -> None:
        release_port(self.port)
        self.port = port
        if port:
            claim_port(port)

    def _startup(self) -> Startup:
        """Spawn the process; what to wait on. Runs on the event loop's thread (we are
        called from async code): PDEATHSIG ties the child to the thread that forks it."""
        spec = self._spec
        command = app_command(
            spec.script,
            host=spec.host,
            port=self.port,
            python=spec.python,
            args=spec.args,
            env=spec.env,
            gpu=self.gpu,
        )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log_file:
            self._log_offset = log_file.tell()
            # Before the fork: once the child runs, its output and ours would interleave.
            gpu = f", CUDA_VISIBLE_DEVICES={self.gpu}" if self.gpu is not None else ""
            header = f"--- spacerun: port {self.port}{gpu}: {' '.join(command.argv)}\n"
            log_file.write(header.encode())
            log_file.flush()
            self._proc = None
            try:
                self._proc = spawn(
                    command.argv,
                    cwd=command.cwd,
                    env={**os.environ, **command.env},
                    log_file=log_file,
                )
            except OSError as error:  # no such interpreter, not executable, ...
                raise NotReady(
                    f"could not be started: {error}",
                    advice="check python: in the manifest (a path, or a name on PATH)",
                ) from error
        log.info("%s: pid %d, port %d, log %s", self.name, self._proc.pid, self.port, self.log_path)
        return Startup(
            name=self.name,
            url=self.url,
            port=self.port,
            proc=self._proc,
            log=lambda: self._log_tail(lines=200),
            ready_timeout=spec.ready_timeout,
            progress_every=spec.progress_every,
            on_status=self._on_status,
        )

    def _log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines this start wrote to the log (earlier starts excluded), its
        tracebacks without the launcher's frames (the log file itself keeps them)."""
        return log_tail(
            self.log_path, since=self._log_offset, lines=lines, clean=without_launcher_frames
        )

    def _error(self, not_ready: NotReady) -> LocalAppError:
        proc = self._proc
        code = None if proc is None else proc.returncode
        tail = self._log_tail()
        script = self._spec.script
        advice = f"; {not_ready.advice}" if not_ready.advice else ""
        message = (
            f"local copy {self.name} of {self._spec.display} ({script}) on port {self.port} "
            f"{not_ready.why}; exit code "
            f"{'none (it never ran)' if proc is None else describe_exit(code)}{advice}\n"
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
    """`spec.copies` copies of a Gradio app script, for the length of an `async with`.

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
        return f"<LocalApps {self.spec.display}: {alive}/{self.spec.copies} alive>"

    @property
    def urls(self) -> list[str]:
        return [app.url for app in self.apps]

    async def __aenter__(self) -> LocalApps:
        spec = self.spec
        if not spec.script.is_file():
            raise LocalAppError(
                f"no app script at {spec.script}; check the path in the manifest",
                script=spec.script,
            )
        count = spec.copies
        on_gpus = f" on GPUs {', '.join(dict.fromkeys(spec.gpus))}" if spec.gpus else ""
        self._on_status(
            f"starting {count} local {'copy' if count == 1 else 'copies'} of "
            f"{spec.display}{on_gpus}…"
        )
        self.apps = [
            LocalApp(
                spec,
                index=spec.first_index + offset,
                log_path=self.log_dir / f"local-{spec.first_index + offset}.log",
                on_status=self._on_status,
                gpu=spec.gpu_of(offset),
            )
            for offset in range(count)
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
