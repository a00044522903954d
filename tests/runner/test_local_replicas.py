"""`runner.launch._local`: spacerun starts copies of a Gradio app script and leaves no orphan.

Real subprocesses and real Gradio apps. "Gone" is observed as an event: a pidfd
(Linux) becomes readable when its process ends, whoever's child it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import anyio
import httpx
import pytest
from anyio.abc import SocketAttribute, SocketListener
from support.apps import pid_alive

from jobs import AsyncClient
from runner.errors import RunnerError
from runner.launch import LocalAppError, LocalApps, LocalAppSpec
from runner.launch import _procs as _procs

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parents[1] / "apps"
CALCULATOR = APPS / "calculator.py"
PIDFD = hasattr(os, "pidfd_open")
GONE_WITHIN = 10.0  # seconds for the kernel (and PDEATHSIG) to end a process
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and pidfds are Linux-only"
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Ends:
    """Watches processes (not necessarily our children) through pidfds."""

    def __init__(self, pids: Iterable[int]) -> None:
        self._pids = list(pids)
        self._fds = {os.pidfd_open(pid): pid for pid in self._pids} if PIDFD else {}

    def still_running(self, within: float = GONE_WITHIN) -> list[int]:
        """Wait until every watched process has ended or `within` s pass; the survivors."""
        if not PIDFD:
            return self._poll_without_pidfd(within)
        pending = dict(self._fds)
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + within
        while pending:
            left = max(deadline - time.monotonic(), 0)
            ended = poller.poll(left * 1000)
            for fd, _ in ended:
                poller.unregister(fd)
                pending.pop(fd)
            if not ended and left == 0:
                break
        return sorted(pending.values())

    def _poll_without_pidfd(self, within: float) -> list[int]:
        # Elsewhere only our own children are watched; they are reaped when they end.
        deadline = time.monotonic() + within
        while True:
            alive = [pid for pid in self._pids if pid_alive(pid)]
            if not alive or time.monotonic() >= deadline:
                return alive
            time.sleep(0.05)

    def close(self) -> None:
        for fd in self._fds:
            os.close(fd)


@contextlib.contextmanager
def watching(pids: Iterable[int]) -> Iterator[Ends]:
    ends = Ends(pids)
    try:
        yield ends
    finally:
        ends.close()


async def test_two_copies_answer_on_their_own_ports_and_stop_on_exit(tmp_path: Path) -> None:
    """Two copies serve the app on different ports; leaving the block ends both."""
    messages: list[str] = []
    spec = LocalAppSpec(script=CALCULATOR, count=2)
    async with LocalApps(spec, log_dir=tmp_path, on_status=messages.append) as apps:
        assert len(set(apps.urls)) == 2
        assert [app.index for app in apps.apps] == [1, 2]
        for app in apps.apps:
            assert app.alive()
            async with AsyncClient(app.url) as client:
                assert await client.predict(4, "add", 5, api_name="/predict") == 9
        assert (tmp_path / "local-1.log").is_file() and (tmp_path / "local-2.log").is_file()
        ends = Ends(app.pid for app in apps.apps)
    try:
        assert ends.still_running(within=0) == []
    finally:
        ends.close()
    assert not any(app.alive() for app in apps.apps)
    assert messages[0] == "starting 2 local copies of calculator.py…"
    ready = sorted(m for m in messages if " ready at " in m)
    assert [m.split(" ready at ")[0] for m in ready] == ["local-1", "local-2"]
    assert all(m.endswith(" s)") for m in ready)


async def test_script_that_fails_at_import_raises_with_its_traceback(tmp_path: Path) -> None:
    """The error names the script, the port, the exit code and the traceback's last line."""
    spec = LocalAppSpec(script=APPS / "local_broken.py", count=2)
    apps = LocalApps(spec, log_dir=tmp_path)
    with pytest.raises(LocalAppError) as caught:
        async with apps:
            pytest.fail("entered although the script cannot start")
    error = caught.value
    message = str(error)
    assert isinstance(error, RunnerError)
    assert "local_broken.py" in message
    assert f"port {error.port}" in message
    assert error.exit_code == 1 and "exit code 1" in message
    assert "RuntimeError: local_broken: this script fails at import" in message
    assert not any(app.alive() for app in apps.apps)


@pytest.mark.parametrize(
    "source",
    [
        'raise RuntimeError("fails at import")\n',
        "def divide():\n    return 1 / 0\n\n\ndivide()\n",
        "import os\n\ndef broken(:\n    pass\n",
    ],
    ids=["raise", "in-a-function", "syntax-error"],
)
async def test_a_failing_script_is_quoted_as_python_shows_it(tmp_path: Path, source: str) -> None:
    """The traceback in the error is the one `python app.py` prints: the launcher's frames
    (`_bootstrap.py`, runpy) are left out of the quote, and kept in the log file."""
    script = tmp_path / "app.py"
    script.write_text(source)
    direct = await anyio.run_process([sys.executable, str(script)], check=False)
    assert direct.returncode == 1 and direct.stderr
    with pytest.raises(LocalAppError) as caught:
        async with LocalApps(LocalAppSpec(script=script), log_dir=tmp_path / "logs"):
            pytest.fail("entered although the script cannot start")
    message = str(caught.value)
    quoted = "\n".join(f"    {line}" for line in direct.stderr.decode().strip().splitlines())
    assert message.endswith(quoted), message
    assert '_bootstrap.py", line' not in message and "runpy" not in message
    log_path = caught.value.log_path
    assert log_path is not None and '_bootstrap.py", line' in log_path.read_text()


async def test_missing_interpreter_raises_local_app_error(tmp_path: Path) -> None:
    """A wrong `python` is reported like any copy that cannot start."""
    spec = LocalAppSpec(script=CALCULATOR, python="no-such-python-for-spacerun")
    with pytest.raises(LocalAppError, match=r"could not be started: .*no-such-python-for-spacerun"):
        async with LocalApps(spec, log_dir=tmp_path):
            pytest.fail("entered without an interpreter")


async def test_script_that_never_answers_times_out_clearly(tmp_path: Path) -> None:
    """A copy that runs but never serves /config is stopped after ready_timeout."""
    spec = LocalAppSpec(script=APPS / "local_sleeper.py", ready_timeout=1.5)
    apps = LocalApps(spec, log_dir=tmp_path)
    started = anyio.current_time()
    with pytest.raises(LocalAppError) as caught:
        async with apps:
            pytest.fail("entered although the script never answers")
    assert anyio.current_time() - started < 1.5 + 6  # the deadline, plus SIGTERM's wait
    message = str(caught.value)
    port = caught.value.port
    assert f"did not answer GET http://127.0.0.1:{port}/config within 1.5 s" in message
    assert "local_sleeper: sleeping, never ready" in message  # the log's tail
    assert caught.value.exit_code == -signal.SIGTERM
    assert not apps.apps[0].alive()


async def test_cancelling_while_waiting_for_readiness_stops_the_copy(tmp_path: Path) -> None:
    """Cancellation during startup kills the half-started copy before it propagates."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(SocketAttribute.local_port)
    spec = LocalAppSpec(
        script=APPS / "local_sleeper.py",
        env={"LOCAL_SLEEPER_REPORT_PORT": str(port)},
        ready_timeout=60,
    )
    apps = LocalApps(spec, log_dir=tmp_path)

    async def enter() -> None:
        async with apps:
            pytest.fail("entered although the script never answers")

    async with listener, anyio.create_task_group() as group:
        group.start_soon(enter)
        (inner,) = listener.listeners
        assert isinstance(inner, SocketListener)
        async with await inner.accept() as conn:
            pid = int(await conn.receive())
        ends = Ends([pid])
        group.cancel_scope.cancel()
    try:
        assert ends.still_running(within=0) == []
    finally:
        ends.close()


async def test_cancelling_the_enclosing_task_stops_the_copies(tmp_path: Path) -> None:
    """A cancelled task group unwinds through LocalApps, which ends every copy."""
    running = anyio.Event()
    pids: list[int] = []

    async def run() -> None:
        async with LocalApps(LocalAppSpec(script=CALCULATOR), log_dir=tmp_path) as apps:
            pids.extend(app.pid for app in apps.apps)
            running.set()
            await anyio.sleep_forever()

    async with anyio.create_task_group() as group:
        group.start_soon(run)
        await running.wait()
        ends = Ends(pids)
        group.cancel_scope.cancel()
    try:
        assert ends.still_running(within=0) == []
    finally:
        ends.close()


async def test_restart_brings_a_killed_copy_back_on_the_same_port(tmp_path: Path) -> None:
    """After the app dies, restart() starts it again where clients expect it."""
    messages: list[str] = []
    spec = LocalAppSpec(script=CALCULATOR)
    async with LocalApps(spec, log_dir=tmp_path, on_status=messages.append) as apps:
        (app,) = apps.apps
        port, old_pid = app.port, app.pid
        with watching([old_pid]) as ends:
            os.killpg(old_pid, signal.SIGKILL)
            assert ends.still_running() == []
        assert not app.alive()
        await app.restart()
        assert app.alive() and app.pid != old_pid
        assert app.port == port
        async with AsyncClient(app.url) as client:
            assert await client.predict(2, "multiply", 3, api_name="/predict") == 6
    assert "restarting local-1…" in messages
    assert sum(" ready at " in m for m in messages) == 2


async def test_restart_moves_to_another_port_when_its_port_is_taken(tmp_path: Path) -> None:
    """If something else took the port meanwhile, the copy comes back on a free one."""
    async with LocalApps(LocalAppSpec(script=CALCULATOR), log_dir=tmp_path) as apps:
        (app,) = apps.apps
        port = app.port
        with watching([app.pid]) as ends:
            os.killpg(app.pid, signal.SIGKILL)
            assert ends.still_running() == []
        with socket.socket() as squatter:
            squatter.bind(("127.0.0.1", port))
            squatter.listen()
            await app.restart()
            assert app.port != port
            async with httpx.AsyncClient(trust_env=False) as http:
                assert (await http.get(f"{app.url}/config")).status_code == 200


async def test_atexit_sweep_stops_copies_that_were_never_exited(tmp_path: Path) -> None:
    """The interpreter-exit sweep ends copies whose `async with` never got to finish."""
    apps = LocalApps(LocalAppSpec(script=CALCULATOR), log_dir=tmp_path)
    await apps.__aenter__()
    try:
        with watching(app.pid for app in apps.apps) as ends:
            _procs._sweep()  # what atexit runs
            assert ends.still_running(within=0) == []
    finally:
        await apps.__aexit__(None, None, None)


# -- spacerun itself dies: a driver process owns the copies ----------------------


def start_driver(
    tmp_path: Path, count: int, *extra: str
) -> tuple[subprocess.Popen[str], dict[str, list[int]]]:
    """Run tests/apps/local_driver.py; return it and its {"pids", "ports"} once ready."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    stderr = (tmp_path / "driver.err").open("w")
    driver = subprocess.Popen(
        [
            sys.executable,
            str(APPS / "local_driver.py"),
            str(CALCULATOR),
            str(count),
            str(tmp_path / "logs"),
            *extra,
        ],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
    )
    stderr.close()
    line = driver.stdout.readline() if driver.stdout else ""
    if not line:
        driver.wait(timeout=10)
        pytest.fail(f"driver exited {driver.returncode}:\n{(tmp_path / 'driver.err').read_text()}")
    return driver, json.loads(line)


@pytest.fixture
def reaper() -> Iterator[list[int]]:
    """Process groups to SIGKILL after the test, should it fail half-way."""
    groups: list[int] = []
    yield groups
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)


@linux_only
@pytest.mark.parametrize(
    ("sig", "count"),
    [(signal.SIGKILL, 2), (signal.SIGTERM, 1)],
    ids=["kill-9", "sigterm-default"],
)
def test_owner_killed_without_cleanup_leaves_no_orphan(
    tmp_path: Path, reaper: list[int], sig: signal.Signals, count: int
) -> None:
    """kill -9 (or a SIGTERM nobody handles) of spacerun: PDEATHSIG ends its copies."""
    driver, started = start_driver(tmp_path, count)
    reaper.extend([driver.pid, *started["pids"]])
    assert len(started["pids"]) == count
    with watching(started["pids"]) as ends:
        driver.send_signal(sig)
        assert driver.wait(timeout=10) == -sig
        assert ends.still_running() == []
    assert "stopped" not in (tmp_path / "driver.err").read_text()  # no Python cleanup ran


@linux_only
@pytest.mark.parametrize(
    ("sig", "extra", "ends_with"),
    [(signal.SIGINT, (), "KeyboardInterrupt"), (signal.SIGTERM, ("--graceful-sigterm",), "")],
    ids=["ctrl-c", "sigterm-handled"],
)
def test_owner_interrupted_stops_its_copies_gracefully(
    tmp_path: Path, reaper: list[int], sig: signal.Signals, extra: tuple[str, ...], ends_with: str
) -> None:
    """Ctrl-C (KeyboardInterrupt out of anyio.run) or a handled SIGTERM runs __aexit__."""
    driver, started = start_driver(tmp_path, 1, *extra)
    reaper.extend([driver.pid, *started["pids"]])
    with watching(started["pids"]) as ends:
        driver.send_signal(sig)
        driver.wait(timeout=20)
        assert ends.still_running() == []
    errors = (tmp_path / "driver.err").read_text()
    assert "stopped 1 local copy" in errors
    assert errors.rstrip().endswith(ends_with)
