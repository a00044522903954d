"""gradio 3.x apps (the `ws` protocol) through the same `jobs` API, against a real
gradio 3.50.2 server (tests/old_gradio/apps/gradio3.py in the pinned venv that
tests/support/old_gradio.py builds), and side by side with gradio_client 1.13.3, the
last client that speaks `ws`."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.apps import RunningApp, start_app
from support.cli import spacerun
from support.old_gradio import OLD_APPS_DIR, OldApps, venv_python

from jobs import (
    AppError,
    AsyncClient,
    AuthError,
    Client,
    JobCancelled,
    LimitExceeded,
    Limits,
    QueueFull,
    Status,
    StatusUpdate,
    StreamLost,
    UnsupportedVersion,
    handle_file,
)
from jobs._protocol.schema import AppSchema

SUPPORT = Path(__file__).resolve().parents[1] / "support"


@pytest.fixture(scope="module")
def app3(old_apps: OldApps) -> RunningApp:
    return old_apps.get("3.50.2", "gradio3")


@pytest.fixture(scope="module")
def client3(app3: RunningApp) -> Iterator[Client]:
    with Client(app3.url) as client:
        yield client


def test_a_3x_app_is_read_as_ws_with_names_and_defaults(client3: Client) -> None:
    """The API of a 3.x app: protocol ws, parameter names from labels, defaults from
    the components' initial values, and which listener skips the queue."""
    schema = client3.schema
    assert schema.protocol == "ws" and schema.version == "3.50.2"
    predict = client3.endpoint("/predict")
    assert [(p.name, p.required, p.default) for p in predict.parameters] == [
        ("num1", False, 3.0),
        ("operation", True, None),
        ("num2", True, None),
    ]
    assert client3.endpoint("/file").parameters[0].file_kind == "single"
    assert client3.endpoint("/upper").queued is False
    text = client3.view_api(print_info=False, return_format="str")
    assert isinstance(text, str)
    assert 'api_name="/count"' in text and "num1" in text


def test_positional_keyword_and_default_arguments(client3: Client) -> None:
    """The guide's calculator calls: positional, keyword, and a default left out."""
    assert client3.predict(4, "add", 5, api_name="/predict") == 9.0
    assert client3.predict(num1=4, operation="add", num2=5, api_name="/predict") == 9.0
    assert client3.predict(operation="multiply", num2=2, api_name="/predict") == 6.0


def test_an_app_error_carries_its_message(client3: Client) -> None:
    with pytest.raises(AppError, match="Cannot divide by zero!"):
        client3.predict(1, "divide", 0, api_name="/predict")


def test_a_generator_yields_every_whole_value(client3: Client) -> None:
    job = client3.submit(4, api_name="/count")
    assert list(job) == ["0", "1", "2", "3"]
    assert job.result() == "3"
    assert job.outputs() == ["0", "1", "2", "3"]


def test_a_file_goes_up_and_its_copy_comes_back(client3: Client, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_bytes(b"three point x\n" * 100)
    out = client3.predict(str(source), api_name="/file")
    assert Path(out).name == "copy_notes.txt"
    assert Path(out).read_bytes() == source.read_bytes()


def _png(path: Path) -> Path:
    from PIL import Image

    image = Image.new("RGB", (4, 2), (0, 0, 0))
    image.putpixel((0, 0), (255, 0, 0))
    image.save(path)
    return path


def test_an_image_goes_as_base64_and_comes_back_as_a_file(client3: Client, tmp_path: Path) -> None:
    """3.x Images travel as base64 data URLs both ways: a path goes in, a file comes out."""
    from PIL import Image

    assert client3.endpoint("/mirror").parameters[0].inline
    out = client3.predict(str(_png(tmp_path / "red_corner.png")), api_name="/mirror")
    assert Path(out).suffix == ".png"
    with Image.open(out) as mirrored:
        assert mirrored.size == (4, 2)
        assert mirrored.convert("RGB").getpixel((3, 0)) == (255, 0, 0)


def test_state_is_kept_per_session(client3: Client) -> None:
    client3.reset_session()
    assert client3.predict("a", api_name="/store") == "a"
    assert client3.predict("b", api_name="/store") == "a b"
    client3.reset_session()
    assert client3.predict("c", api_name="/store") == "c"


def test_a_queue_false_listener_and_an_unnamed_one(client3: Client) -> None:
    """`queue=False` runs by a direct POST (gradio_client 1.13.3 fails it); a listener
    without an api_name is called by fn_index."""
    assert client3.predict("abc", api_name="/upper") == "ABC"
    assert client3.predict("abc", fn_index=5) == "cba"


def test_cancel_stops_a_generator_and_the_session_runs_it_again(client3: Client) -> None:
    job = client3.submit(50, api_name="/count")
    while len(job.outputs()) < 2:
        time.sleep(0.05)
    assert job.cancel() is True
    with pytest.raises(JobCancelled):
        job.result(timeout=10)
    assert len(job.outputs()) < 50
    assert client3.predict(2, api_name="/count") == "1"


def test_a_queued_job_is_cancelled_before_it_runs(app3: RunningApp) -> None:
    """With max_workers=1 the second job waits on the client; cancelling it sends
    nothing, and the first still finishes."""

    async def main() -> None:
        async with AsyncClient(app3.url, max_workers=1) as client:
            first = client.submit(3, api_name="/count")
            second = client.submit(3, api_name="/count")
            assert await second.cancel() is True
            assert await first.result() == "2"
            with pytest.raises(JobCancelled):
                await second.result()

    anyio.run(main)


def test_gradio_before_3_is_refused_with_what_to_do() -> None:
    with pytest.raises(UnsupportedVersion, match=r"upgrade the app's gradio \(3\.x or later\)"):
        AppSchema.check_protocol({"version": "2.9.4"}, "http://127.0.0.1:1")


def _ours(client: Client, call: dict[str, Any]) -> dict[str, Any]:
    where = {k: call[k] for k in ("api_name", "fn_index") if k in call}
    try:
        value = client.predict(*call["args"], **where)
    except Exception as exc:
        return {"error": type(exc).__name__}
    if isinstance(value, str) and Path(value).is_file():
        return {"value": {"file_sha256": hashlib.sha256(Path(value).read_bytes()).hexdigest()}}
    return {"value": value}


def test_differential_against_gradio_client_1_13_3(
    app3: RunningApp, tmp_path: Path, record_property: Any
) -> None:
    """The same calls through gradio_client 1.13.3 (in its own venv) and through jobs:
    every call both complete gives the same value; the known differences are counted."""
    sample = tmp_path / "in.txt"
    sample.write_text("hello\n")
    calls: list[dict[str, Any]] = [
        {"args": [4, "add", 5], "api_name": "/predict"},
        {"args": [-4, "multiply", 2.5], "api_name": "/predict"},
        {"args": [0, "subtract", 1.2], "api_name": "/predict"},
        {"args": [4, "divide", 2], "api_name": "/predict"},
        {"args": [3], "api_name": "/count"},
        {"args": [str(sample)], "api_name": "/file"},
        {"args": ["a"], "api_name": "/store"},
        {"args": ["b"], "api_name": "/store"},
        {"args": ["abc"], "fn_index": 5},
        {"args": [str(_png(tmp_path / "in.png"))], "api_name": "/mirror"},
        {"args": ["abc"], "api_name": "/upper"},
    ]
    done = subprocess.run(
        [venv_python("gc-1.13.3"), str(SUPPORT / "gc3_calls.py"), app3.url],
        input=json.dumps(calls),
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    theirs = json.loads(done.stdout)
    with Client(app3.url) as client:
        ours = [_ours(client, call) for call in calls]
    agree = [o == t for o, t in zip(ours, theirs, strict=True)]
    record_property("agree", f"{sum(agree)}/{len(calls)}")
    # The one difference: a queue=False listener, which gradio_client 1.13.3 sends as a
    # JSON string (the app answers 422, and it raises); jobs calls it.
    assert agree == [True] * 10 + [False]
    assert theirs[-1] == {"error": "KeyError"} and ours[-1] == {"value": "ABC"}


def test_a_spacerun_batch_on_3x_resumes(app3: RunningApp, tmp_path: Path) -> None:
    """`spacerun run` on a 3.x app: a row the app fails is reported, the summary names the
    replica's gradio and protocol, and running the same command again resumes: done rows
    are not sent again. `spacerun validate` checks rows against the 3.x app's API."""
    rows = tmp_path / "rows.csv"
    rows.write_text("num1,operation,num2\n1,add,2\n6,multiply,7\n1,divide,0\n3,subtract,1\n")
    args = ["run", str(rows), "--app", app3.url, "--endpoint", "/predict"]
    args += ["--set", f"output.dir={tmp_path / 'run'}"]
    first = spacerun(*args)
    assert first.returncode == 1, first.stderr
    assert "3 ok, 1 failed" in first.stderr and "Cannot divide by zero!" in first.stderr
    assert "gradio 3.50.2 (ws)" in first.stderr
    (replica,) = json.loads((tmp_path / "run" / "summary.json").read_text())["replicas"]
    assert (replica["gradio"], replica["protocol"]) == ("3.50.2", "ws")
    again = spacerun(*args)
    assert "0 ok, 1 failed" in again.stderr and "3 already done" in again.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["exit_status"] == 1

    bad = tmp_path / "bad.csv"
    bad.write_text("num1,operation,num2\n1,add,2\nx,add,3\n")
    checked = spacerun("validate", str(bad), "--app", app3.url, "--endpoint", "/predict")
    assert checked.returncode != 0
    assert "num1 (Number): expected a number" in checked.stdout + checked.stderr


def test_a_message_over_the_limit_is_refused(app3: RunningApp) -> None:
    """A 3.x result travels in one websocket message: one over `max_message_bytes`
    fails the job with `LimitExceeded` (the rest is not read), and the next job runs."""
    with Client(app3.url, limits=Limits(max_message_bytes=100_000)) as client:
        with pytest.raises(LimitExceeded, match="max_message_bytes"):
            client.predict(200_000, api_name="/big")
        assert client.predict(10, api_name="/big") == "x" * 10


def _set_when(
    event: anyio.Event, condition: Callable[[StatusUpdate], bool]
) -> Callable[[StatusUpdate], None]:
    def listener(update: StatusUpdate) -> None:
        if condition(update):
            event.set()

    return listener


@pytest.fixture
def tight_app3() -> Iterator[RunningApp]:
    app = start_app(
        str(OLD_APPS_DIR / "gradio3.py"),
        python=venv_python("3.50.2"),
        env={"GRADIO3_TIGHT_QUEUE": "1", "GRADIO3_AUTH": "ada:lovelace"},
        ready_timeout=180,
    )
    yield app
    app.stop()


def test_a_login_a_full_queue_and_a_server_that_dies_mid_job(tight_app3: RunningApp) -> None:
    """A password-protected 3.x app: a wrong login is an `AuthError`; with the right one
    the websocket carries the login cookie. One job runs, one waits, the third finds
    the queue full (`QueueFull`, which a batch retries); the app then stops and the
    running job fails with `StreamLost`."""
    with pytest.raises(AuthError):
        Client(tight_app3.url, auth=("ada", "babbage")).close()

    async def main() -> None:
        async with AsyncClient(tight_app3.url, auth=("ada", "lovelace")) as client:
            started, queued = anyio.Event(), anyio.Event()
            running = client.submit(100, api_name="/count")
            running.add_status_listener(_set_when(started, lambda u: u.code is Status.ITERATING))
            await started.wait()
            waiting = client.submit(2, api_name="/count")
            # Its estimation: the app has put it in its queue.
            waiting.add_status_listener(_set_when(queued, lambda u: u.queue_size is not None))
            await queued.wait()
            with pytest.raises(QueueFull):
                await client.predict(2, api_name="/count")
            tight_app3.stop()
            with pytest.raises(StreamLost):
                await running.result(timeout=30)

    anyio.run(main)


def _queue_size(url: str) -> int:
    import httpx

    return int(httpx.get(f"{url}/queue/status", timeout=5).json()["queue_size"])


def test_ctrl_c_twice_stops_a_3x_batch_at_once_and_frees_the_app(
    app3: RunningApp, tmp_path: Path
) -> None:
    """A `spacerun run` on a 3.x app, interrupted twice while jobs run and wait: it stops
    at once (exit 130), and the app is left with nothing queued (closing the sockets
    removed the waiting jobs, `/reset` ended the generators), so it serves the next call."""
    import signal
    import sys

    rows = tmp_path / "rows.csv"
    rows.write_text("n\n" + "".join(f"{100 + i}\n" for i in range(8)))
    args = ["run", str(rows), "--app", app3.url, "--endpoint", "/count"]
    args += ["--set", f"output.dir={tmp_path / 'run'}", "--set", "run.concurrency=8"]
    args += ["--progress", "plain"]
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner.cli", *args],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        # Four run (the app's concurrency), the rest wait in its queue: asking is the
        # only way to know, from another process.
        while _queue_size(app3.url) == 0:
            assert time.monotonic() < deadline, "the batch never filled the app's queue"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.5)  # the first interrupt is handled before the second arrives
        second = time.monotonic()
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
        stopped_after = time.monotonic() - second
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output
    assert stopped_after < 5  # not the 20 s the generators take
    deadline = time.monotonic() + 10
    while _queue_size(app3.url) != 0:
        assert time.monotonic() < deadline, "jobs of the stopped batch stayed in the queue"
        time.sleep(0.05)
    with Client(app3.url) as client:
        assert client.predict(2, api_name="/count") == "1"


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A plain static file server on 127.0.0.1 (where a URL input points), serving
    `tmp_path / "www"`."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()


def test_url_inputs_are_fetched_for_the_app(client3: Client, file_server: tuple[str, Path]) -> None:
    """A 3.x app cannot fetch a URL input itself: the client fetches it and sends it
    inline (a file as base64 data, an image as a data URL), as gradio_client 1.x did."""
    from PIL import Image

    base, root = file_server
    (root / "notes.txt").write_bytes(b"from a url\n")
    copied = client3.predict(handle_file(f"{base}/notes.txt"), api_name="/file")
    assert Path(copied).read_bytes() == b"from a url\n"
    _png(root / "corner.png")
    mirrored = client3.predict(handle_file(f"{base}/corner.png"), api_name="/mirror")
    with Image.open(mirrored) as image:
        assert image.convert("RGB").getpixel((3, 0)) == (255, 0, 0)
