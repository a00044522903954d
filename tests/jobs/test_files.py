"""Files in and out through `jobs.Client`, against the real `files` app."""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from support.apps import RunningApp
from support.fault_proxy import FaultProxy

import jobs
from jobs import Client, handle_file


@pytest.fixture
def client(files_app: RunningApp, tmp_path: Path) -> Iterator[Client]:
    with Client(files_app.url, download_files=tmp_path / "downloads") as c:
        yield c


def make_wav(path: Path, seconds: float = 0.5, rate: int = 8000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\x00\x01" * int(seconds * rate))
    return path


def test_text_file_round_trip(client: Client, tmp_path: Path) -> None:
    """A local file goes up; the app's output file comes back as a local path."""
    source = tmp_path / "hello world.txt"
    source.write_text("hi there")
    out = client.predict(handle_file(source), api_name="/echo_file")
    path = Path(out)
    assert path.read_text() == "echo: hi there"
    assert path.name == "echo_hello world.txt"
    assert (tmp_path / "downloads") in path.parents


def test_plain_path_string_is_wrapped(client: Client, tmp_path: Path) -> None:
    """Where the schema says file, a plain path string just works (manifest columns)."""
    source = tmp_path / "plain.txt"
    source.write_text("plain")
    assert Path(client.predict(str(source), api_name="/echo_file")).read_text() == "echo: plain"


def test_image_and_audio(client: Client, tmp_path: Path) -> None:
    """Image and audio in and out; several outputs come back as a tuple."""
    picture = tmp_path / "in.png"
    img = Image.new("RGB", (16, 8), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 8, 8))  # left half red
    img.save(picture)
    mirrored = client.predict(str(picture), api_name="/image")
    with Image.open(mirrored) as out:
        right = out.convert("RGB").getpixel((14, 4))
        left = out.convert("RGB").getpixel((1, 4))
    assert isinstance(right, tuple) and isinstance(left, tuple)
    assert right[0] > 200 > right[2] and left[2] > 200 > left[0]
    sound, duration = client.predict(str(make_wav(tmp_path / "a.wav")), api_name="/audio")
    assert duration == 0.5
    assert Path(sound).stat().st_size > 0


def test_nested_outputs_with_same_names_do_not_overwrite(client: Client) -> None:
    """Gallery files both named image.png land in different places, nested in the output."""
    items = client.predict(api_name="/gallery")
    paths = [Path(item["image"]) if isinstance(item, dict) else Path(item[0]) for item in items]
    assert len(paths) == 2 and paths[0] != paths[1]
    assert all(p.name == "image.png" and p.exists() for p in paths)
    colors = {Image.open(p).convert("RGB").getpixel((0, 0)) for p in paths}
    assert colors == {(255, 0, 0), (0, 0, 255)}


def test_chatbot_files(client: Client) -> None:
    """Files inside chat messages are downloaded too."""
    history = client.predict("cats", api_name="/chat_files")
    found: list[Path] = []
    for message in history:
        parts = message["content"] if isinstance(message["content"], list) else [message["content"]]
        found.extend(
            Path(part["file"])
            for part in parts
            if isinstance(part, dict) and isinstance(part.get("file"), str)
        )
    assert any(p.name == "notes.txt" and p.read_text() == "notes about cats" for p in found)


def test_hostile_names_stay_inside_the_folder(client: Client, tmp_path: Path) -> None:
    """Names from the server never escape the download folder, whatever they hold."""
    folder = (tmp_path / "downloads").resolve()
    files, forged = client.predict(api_name="/evil_name")
    # gr.JSON passes FileData-shaped dicts through; like gradio_client, they are files.
    paths = [Path(p) for p in files] + [Path(f) for f in forged]
    assert len(paths) == 12
    for path in paths:
        resolved = path.resolve()
        assert folder in resolved.parents, path
        assert resolved.exists()
        assert "\n" not in path.name and "/" not in path.name and "\\" not in path.name
    assert not (tmp_path / "escape.txt").exists()


def test_download_files_false_returns_file_data(files_app: RunningApp, tmp_path: Path) -> None:
    """download_files=False hands back the server's FileData untouched."""
    source = tmp_path / "x.txt"
    source.write_text("x")
    with Client(files_app.url, download_files=False) as c:
        out = c.predict(str(source), api_name="/echo_file")
    assert isinstance(out, dict) and jobs.is_file_data(out)
    assert out["orig_name"] == "echo_x.txt"


def test_missing_file_raises_before_sending() -> None:
    """handle_file on a missing path raises FileError at once."""
    with pytest.raises(jobs.FileError, match="file not found"):
        handle_file("no/such/file.wav")


def test_file_over_limit_raises_before_upload(client: Client, tmp_path: Path) -> None:
    """A file over the app's max_file_size names the file, its size and the limit."""
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 150_000)
    with pytest.raises(jobs.FileError) as caught:
        client.submit(str(big), api_name="/echo_file")
    message = str(caught.value)
    assert "big.bin" in message and "150,000 bytes" in message
    assert "limit of 102,400 bytes" in message


def test_same_content_uploaded_once(files_app: RunningApp, tmp_path: Path) -> None:
    """Ten jobs with the same file content upload it once per client."""
    first = tmp_path / "a.txt"
    second = tmp_path / "b.txt"
    first.write_text("same bytes")
    second.write_text("same bytes")
    with FaultProxy(files_app.url) as proxy, Client(proxy.url) as c:
        submitted = [
            c.submit(str(first if i % 2 else second), api_name="/echo_file") for i in range(10)
        ]
        for job in submitted:
            assert Path(job.result()).read_text() == "echo: same bytes"
        assert proxy.counts("upload", status=200) == 1
