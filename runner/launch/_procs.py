"""Process plumbing for local replicas: spawning, stopping and waiting, ports, logs.

A copy runs in its own session (so its own process group, which the terminal's Ctrl-C
skips) and, on Linux, asks the kernel for SIGKILL when the thread that forked it dies
(`prctl(PR_SET_PDEATHSIG)`). `spawn` must therefore be called from the event loop's
thread, never from an `anyio.to_thread` worker: see `_local`'s docstring.

Copies spawned here and not yet stopped are stopped by an `atexit` sweep.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import anyio

__all__ = [
    "claim_port",
    "describe_exit",
    "free_port",
    "log_tail",
    "port_is_free",
    "release_port",
    "spawn",
    "stop_group",
    "wait_exit",
    "without_launcher_frames",
]

_ATEXIT_GRACE = 2.0  # shorter: the user is already waiting for the prompt
_PR_SET_PDEATHSIG = 1

# Copies started by this process and not yet stopped, for the atexit sweep; and their
# ports, so that two copies never get the same one.
_live: set[subprocess.Popen[bytes]] = set()
_claimed_ports: set[int] = set()


def spawn(
    command: Sequence[str], *, cwd: Path, env: Mapping[str, str], log_file: IO[bytes]
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session with stdout and stderr to `log_file`, tied to
    this thread's life on Linux. Raises OSError if it cannot be started."""
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group; the terminal's ^C skips it
        preexec_fn=_die_with_parent_hook(),
    )
    _live.add(proc)
    return proc


async def stop_group(proc: subprocess.Popen[bytes], grace: float) -> bool:
    """SIGTERM the process group, wait up to `grace` s, then SIGKILL the group (so
    nothing the app started survives it). True once `proc` is dead and reaped; if it
    is not, it is left to the atexit sweep. Call it shielded."""
    if proc.poll() is None:
        _signal_group(proc.pid, signal.SIGTERM)
        await wait_exit(proc, grace)
    _signal_group(proc.pid, signal.SIGKILL)
    if not await wait_exit(proc, grace):
        return False
    _live.discard(proc)
    return True


async def wait_exit(proc: subprocess.Popen[bytes], seconds: float) -> bool:
    """Wait up to `seconds` for `proc` to exit; True (and reaped) if it has."""
    with anyio.move_on_after(seconds):
        await _exited(proc)
    return proc.poll() is not None


async def _exited(proc: subprocess.Popen[bytes]) -> None:
    """Return once `proc` has exited: a pidfd wakes us on Linux, polling elsewhere."""
    if proc.poll() is not None:
        return
    pidfd = _open_pidfd(proc.pid)
    if pidfd is None:
        delay = 0.01
        while proc.poll() is None:
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.2)
        return
    try:
        await anyio.wait_readable(pidfd)
    finally:
        os.close(pidfd)


def _open_pidfd(pid: int) -> int | None:
    # pidfd_open: Linux 5.3+; anyio.wait_readable: anyio 4.7+.
    if not hasattr(os, "pidfd_open") or not hasattr(anyio, "wait_readable"):
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def describe_exit(code: int | None) -> str:
    """An exit code as a person reads it: `-9 (killed by SIGKILL)`."""
    if code is None:
        return "unknown (still running)"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"{code} (killed by {signal.Signals(-code).name})"
    return str(code)


def log_tail(
    path: Path, *, since: int, lines: int, clean: Callable[[str], str] | None = None
) -> str:
    """The last `lines` lines of the log at `path` written after offset `since`, after
    `clean` (if given) has rewritten the text read."""
    try:
        with path.open("rb") as log_file:
            size = log_file.seek(0, os.SEEK_END)
            log_file.seek(max(since, size - 64 * 1024))
            text = log_file.read().decode(errors="replace")
    except OSError:
        return ""
    if clean is not None:
        text = clean(text)
    return "\n".join(text.splitlines()[-lines:])


# One frame of a traceback: its "File" line (after any "| " of an exception group).
_FRAME = re.compile(r'^(?P<indent>[ |]*)File "(?P<file>[^"]*)", line \d+')
_LOCATION = re.compile(r'^[ |]*File "[^"]*", line \d+$')
#: The launcher's file, wherever a launcher put it (see `_command.bootstrap_source`).
_LAUNCHER = "_bootstrap.py"


def _is_runpy(file: str) -> bool:
    return file == "<frozen runpy>" or file.endswith(("/runpy.py", "\\runpy.py"))


def without_launcher_frames(text: str) -> str:
    """`text` with the launcher's own frames taken out of every traceback in it, so an
    app's traceback reads as it would after `python app.py`.

    The launcher (`_bootstrap.py`, which runs the script through `runpy`) leads every
    traceback of a script failing at start, and its patched `launch` sits between the
    script's frames and gradio's. Its frames go, and runpy's before the first frame of
    the app (an app using runpy itself keeps those); all other lines stay."""
    out: list[str] = []
    dropping: str | None = None  # the indent of the frame being dropped
    seen_app = False
    for line in text.splitlines():
        if line.lstrip(" |").startswith("Traceback (most recent call last)"):
            seen_app = False
        frame = _FRAME.match(line)
        if frame is not None:
            file = frame["file"]
            launcher = Path(file).name == _LAUNCHER or (_is_runpy(file) and not seen_app)
            if launcher:
                dropping = frame["indent"]
                continue
            seen_app = True
            dropping = None
        elif dropping is not None and line.startswith(dropping + "  "):
            continue  # the dropped frame's source line, or its ^^^ marks
        else:
            dropping = None
        out.append(line)
    # A SyntaxError in the script: only the launcher's frames led to it, and python shows
    # no "Traceback" header above the error's location (a File line without ", in").
    return "\n".join(
        line
        for line, after in zip(out, [*out[1:], ""], strict=True)
        if not (line.lstrip(" |").startswith("Traceback (") and _LOCATION.match(after))
    )


@functools.cache
def _prctl() -> Callable[..., int] | None:
    # Loaded in the parent: dlopen between fork and exec could deadlock on the loader lock.
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGKILL the child when its parent thread dies."""
    prctl = _prctl()
    if prctl is None:
        return None
    parent = os.getpid()

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL))
        # The parent may have died between fork and prctl: nobody would signal us then.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


# -- ports ---------------------------------------------------------------------


def claim_port(port: int) -> None:
    """Mark `port` as given to a copy: `free_port` will not hand it out again."""
    _claimed_ports.add(port)


def release_port(port: int) -> None:
    _claimed_ports.discard(port)


def free_port(host: str) -> int:
    """A port on `host` that is free now and not claimed by another copy."""
    # The kernel picks a port that is free now; the app binds it a moment later. A clash
    # in between is rare, shows in the app's log, and `_start` then tries another port.
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in _claimed_ports:
            return port
    raise RuntimeError("no free loopback port")  # pragma: no cover - the kernel ran out


def port_is_free(host: str, port: int) -> bool:
    # SO_REUSEADDR like uvicorn: connections in TIME_WAIT on the port do not block it.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


@atexit.register
def _sweep() -> None:
    """At interpreter exit, stop copies that no `__aexit__` stopped (e.g. a second ^C)."""
    procs = list(_live)
    for proc in procs:
        _signal_group(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + _ATEXIT_GRACE
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(deadline - time.monotonic(), 0))
        _signal_group(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=1.0)
    _live.clear()
