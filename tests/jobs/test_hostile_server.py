"""The client against a server that misbehaves on purpose (`support/hostile.py`).

Each case of the hostile-input issue runs the client in a subprocess of its own
(`support/hostile_child.py`) and checks the error a user gets (its class, the limit it
names), the child's peak memory, and that nothing was written outside the download
folder (the child's cwd, HOME and TMPDIR are watched folders of their own).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.cli import cli_env
from support.hostile import Endless, HostileServer, file_data
from support.hostile_child import measure

from jobs import (
    AsyncClient,
    Client,
    JobTimeout,
    LimitExceeded,
    Limits,
    ProtocolError,
    StreamLost,
    handle_file,
)

MiB = 1 << 20
SERVER_FILE = "/tmp/gradio/0123abcd/out.bin"  # a path on the (pretend) server, never read


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hostile() -> Iterator[HostileServer]:
    with HostileServer() as s:
        yield s


def run_child(tmp_path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one client call in a subprocess whose every writable place is under tmp_path."""
    places = {name: tmp_path / name for name in ("cwd", "home", "tmp", "downloads")}
    for folder in places.values():
        folder.mkdir(exist_ok=True)
    env = {
        **cli_env(),
        "HOME": str(places["home"]),
        "TMPDIR": str(places["tmp"]),
        "HF_HUB_OFFLINE": "1",
    }
    spec = {"downloads": str(places["downloads"]), **spec}
    report = measure(spec, cwd=places["cwd"], env=env, timeout=100)
    assert report["returncode"] == 0, report["message"]
    report["written"] = sorted(
        str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()
    )
    return report


def written_outside_downloads(report: dict[str, Any]) -> list[str]:
    return [p for p in report["written"] if not p.startswith("downloads/")]


def predict(hostile: HostileServer) -> dict[str, Any]:
    return {"url": hostile.url, "action": "predict", "api_name": "/chat_files", "args": ["hi"]}


# -- the cases of the issue -------------------------------------------------------------


def test_a_300_mb_line_stops_at_the_message_limit(hostile: HostileServer, tmp_path: Path) -> None:
    """A 300 MB line without a newline fails the job with the limit named, in bounded memory."""
    hostile.stream = "huge_line"
    report = run_child(tmp_path, predict(hostile))
    assert report["error"] == "LimitExceeded"
    assert report["limit"] == "max_message_bytes"
    assert "64 MiB" in report["message"] and "Limits(max_message_bytes=" in report["message"]
    assert report["peak_mb"] < 200, report
    assert report["written"] == []


def test_the_message_limit_can_be_lowered_and_memory_follows(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """With a 1 MiB limit the same line fails sooner, and takes far less memory."""
    hostile.stream = "huge_line"
    report = run_child(tmp_path, {**predict(hostile), "limits": {"max_message_bytes": MiB}})
    assert report["error"] == "LimitExceeded" and "1 MiB" in report["message"]
    assert report["peak_mb"] < 100, report


def test_an_endless_file_stops_at_its_declared_size(hostile: HostileServer, tmp_path: Path) -> None:
    """A file whose FileData says 1 MB but whose body never ends: an error, no file left."""
    hostile.files[SERVER_FILE] = Endless()
    hostile.outputs = [file_data(SERVER_FILE, size=10**6)]
    report = run_child(tmp_path, predict(hostile))
    assert report["error"] == "ProtocolError"
    assert "1,000,000 bytes" in report["message"] and "removed" in report["message"]
    assert report["written"] == []  # not even a .part file
    assert report["peak_mb"] < 150, report


def test_an_endless_file_without_size_stops_at_the_download_limit(
    hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.files[SERVER_FILE] = Endless()
    hostile.outputs = [file_data(SERVER_FILE, size=None)]
    spec = {**predict(hostile), "limits": {"max_download_bytes": 5 * MiB}}
    report = run_child(tmp_path, spec)
    assert report["error"] == "LimitExceeded"
    assert report["limit"] == "max_download_bytes" and "5 MiB" in report["message"]
    assert report["written"] == []
    assert report["peak_mb"] < 150, report


def test_a_file_declared_over_the_limit_is_not_downloaded(
    hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.files[SERVER_FILE] = Endless()
    hostile.outputs = [file_data(SERVER_FILE, size=2 << 30)]
    report = run_child(tmp_path, predict(hostile))
    assert report["error"] == "LimitExceeded" and report["limit"] == "max_download_bytes"
    assert "1 GiB" in report["message"]
    assert hostile.sent.get("file", 0) == 0
    assert report["written"] == []


def test_a_file_shorter_than_declared_leaves_nothing(
    hostile: HostileServer, tmp_path: Path
) -> None:
    hostile.files[SERVER_FILE] = b"only a part"
    hostile.outputs = [file_data(SERVER_FILE, size=1000)]
    report = run_child(tmp_path, predict(hostile))
    assert report["error"] == "ProtocolError" and "only 11 bytes of" in report["message"]
    assert report["written"] == []


@pytest.mark.parametrize("route", ["config", "info"])
def test_a_gzip_bomb_stops_at_the_json_limit(
    hostile: HostileServer, tmp_path: Path, route: str
) -> None:
    """10 MB of gzip that inflates to 10 GiB: the client inflates 32 MiB and stops."""
    setattr(hostile, route, "gzip_bomb")
    report = run_child(tmp_path, {"url": hostile.url, "action": "connect"})
    assert report["error"] == "LimitExceeded" and report["limit"] == "max_json_bytes"
    assert "32 MiB" in report["message"]
    assert report["peak_mb"] < 200, report
    assert hostile.sent[route] < 10 * MiB  # it stopped reading, too
    assert written_outside_downloads(report) == []


@pytest.mark.parametrize("route", ["config", "join"])
def test_a_server_that_never_answers_fails_after_read_timeout(
    hostile: HostileServer, tmp_path: Path, route: str
) -> None:
    setattr(hostile, route, "silent")
    limits = {"read_timeout": 0.5}
    report = run_child(tmp_path, {**predict(hostile), "limits": limits})
    assert report["error"] in ("ConnectionFailed", "StreamLost")
    assert "read_timeout" in report["message"] and "0.5 s" in report["message"]


def test_a_silent_event_stream_is_lost_after_read_timeout(hostile: HostileServer) -> None:
    hostile.stream = "silent"
    with (
        Client(hostile.url, limits=Limits(read_timeout=0.5)) as client,
        pytest.raises(StreamLost, match="read_timeout"),
    ):
        client.predict("hi", api_name="/chat_files")


def test_the_upload_answer_is_read_under_the_json_limit(
    hostile: HostileServer, tmp_path: Path
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("hello")
    hostile.upload = "gzip_bomb"
    with (
        Client(hostile.url, limits=Limits(max_json_bytes=MiB)) as client,
        pytest.raises(LimitExceeded) as caught,
    ):
        client.predict(handle_file(source), api_name="/echo_file")
    assert caught.value.limit == "max_json_bytes" and caught.value.value == MiB


# -- what already held, kept so ---------------------------------------------------------


def test_heartbeat_only_stream_times_out_cleanly(hostile: HostileServer) -> None:
    """A stream of heartbeats never finishes the job: result(timeout) gives up, close works."""
    hostile.stream = "heartbeats"
    with Client(hostile.url) as client:
        job = client.submit("hi", api_name="/chat_files")
        with pytest.raises(JobTimeout):
            job.result(timeout=0.5)
        assert job.cancel(force=True) in (True, False)


def test_invalid_json_in_the_stream_fails_that_job_only(hostile: HostileServer) -> None:
    hostile.stream_for["bad"] = "invalid_json"
    with Client(hostile.url) as client:
        bad = client.submit("bad", api_name="/chat_files")
        good = client.submit("good", api_name="/chat_files")
        with pytest.raises(ProtocolError, match="invalid JSON"):
            bad.result(timeout=30)
        assert good.result(timeout=30) == [{"role": "user", "content": "good"}]


def test_an_honest_file_is_downloaded(hostile: HostileServer, tmp_path: Path) -> None:
    """The honest path of the same routes works, FileData size and all."""
    hostile.files[SERVER_FILE] = b"x" * 1000
    hostile.outputs = [file_data(SERVER_FILE, size=1000, name="../../escape.bin")]
    with Client(hostile.url, download_files=tmp_path / "downloads") as client:
        path = Path(client.predict("hi", api_name="/chat_files"))
    assert path.read_bytes() == b"x" * 1000
    assert (tmp_path / "downloads") in path.parents and path.name == "escape.bin"
    assert [p.name for p in (tmp_path / "downloads").rglob("*") if p.is_file()] == ["escape.bin"]


@pytest.mark.anyio
async def test_limits_reach_the_async_client(hostile: HostileServer) -> None:
    hostile.config = "gzip_bomb"
    with pytest.raises(LimitExceeded, match="max_json_bytes"):
        async with AsyncClient(hostile.url, limits=Limits(max_json_bytes=MiB)):
            pass


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_json_bytes"):
        Limits(max_json_bytes=0)
    with pytest.raises(ValueError, match="read_timeout"):
        Limits(read_timeout=-1)
    assert Limits(max_download_bytes=None).max_download_bytes is None
