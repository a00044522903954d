"""Every call gradio_client's guide (the seed documents) shows, made with `jobs.Client`.

The guide's Spaces are played by the Hub stand-in, each Space's host pointing at a real
local Gradio app that does the same kind of work (the bundled transcription,
translation and image apps, and the test apps).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.apps import RunningApp, start_apps
from support.hub import HubServer

from jobs import Client, Status, StatusUpdate, file

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "sample_manifests"
AUDIO = str(SAMPLES / "data" / "speech" / "hello_world.wav")
HF_TOKEN = "hf_guide_reader_token_42"
MY_TOKEN = "hf_my_own_token_7"


@pytest.fixture(scope="module")
def spaces() -> Iterator[dict[str, RunningApp]]:
    names = {
        "whisper": str(SAMPLES / "apps" / "transcribe.py"),
        "en2fr": str(SAMPLES / "apps" / "translate.py"),
        "image_generator": str(SAMPLES / "apps" / "imagegen.py"),
    }
    apps = start_apps(list(names.values()), ready_timeout=120)
    try:
        yield dict(zip(names, apps, strict=True))
    finally:
        for app in apps:
            app.stop()


@pytest.fixture
def hub(
    monkeypatch: pytest.MonkeyPatch,
    spaces: dict[str, RunningApp],
    calculator_app: RunningApp,
    generator_app: RunningApp,
    counter_app: RunningApp,
) -> Iterator[HubServer]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with HubServer() as server:
        server.add_user("abidlabs", token=HF_TOKEN)
        server.add_user("me", token=MY_TOKEN)
        server.add_space("abidlabs/whisper", host=spaces["whisper"].url)
        server.add_space("abidlabs/en2fr", host=spaces["en2fr"].url)
        server.add_space("abidlabs/image_generator", host=spaces["image_generator"].url)
        server.add_space("abidlabs/my-private-space", private=True, host=spaces["en2fr"].url)
        server.add_space("gradio/calculator", host=calculator_app.url)
        server.add_space("gradio/count_generator", host=generator_app.url)
        server.add_space("abidlabs/test-yield", host=generator_app.url)
        server.add_space("abidlabs/word_counter", host=counter_app.url)
        server.duplicate_host = lambda space_id: spaces["whisper"].url
        # Every Space id below is resolved through this endpoint.
        monkeypatch.setattr(Client, "__init__", _with_hub(Client.__init__, server.url))
        yield server


def _with_hub(init: Any, endpoint: str) -> Any:
    def patched(self: Client, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("hub_endpoint", endpoint)
        init(self, *args, **kwargs)

    return patched


def test_transcribe_a_file(hub: HubServer) -> None:
    """client = Client("abidlabs/whisper"); client.predict(file("audio_sample.wav"))"""
    client = Client("abidlabs/whisper")
    assert client.predict(file(AUDIO)) == "hello world"
    client.close()


def test_connect_to_spaces_public_and_private(hub: HubServer) -> None:
    """Client("abidlabs/en2fr"); Client("abidlabs/my-private-space", hf_token="...")"""
    with Client("abidlabs/en2fr") as client:
        assert client.predict("hello", api_name="/translate") == "bonjour"
    with Client("abidlabs/my-private-space", hf_token=HF_TOKEN) as client:
        assert client.predict("hello", api_name="/translate") == "bonjour"


def test_duplicate_for_private_use(hub: HubServer) -> None:
    """client = Client.duplicate("abidlabs/whisper", hf_token=HF_TOKEN), twice: the
    second attaches to the copy the first made."""
    for _ in range(2):
        client = Client.duplicate("abidlabs/whisper", hf_token=MY_TOKEN, hub_endpoint=hub.url)
        assert client.predict(file(AUDIO)) == "hello world"
        client.close()
    assert len(hub.calls("POST", "/duplicate")) == 1
    assert hub.spaces["me/whisper"].private


def test_general_app_by_url(spaces: dict[str, RunningApp]) -> None:
    """Client("https://...") for an app hosted anywhere."""
    with Client(spaces["en2fr"].url + "/") as client:
        assert client.predict("hello", "es") == "hola"


def test_view_api(hub: HubServer, capsys: Any) -> None:
    """client.view_api() shows the usage info the guide prints."""
    with Client("abidlabs/whisper") as client:
        client.view_api()
    printed = capsys.readouterr().out
    assert "Client.predict() Usage Info" in printed
    assert "Named API endpoints: 1" in printed
    assert 'predict(audio, api_name="/transcribe") -> Transcript' in printed
    assert "[Audio] audio: filepath" in printed and "(required)" in printed


def test_predict_forms(hub: HubServer) -> None:
    """Client(..., api_name=...) ; predict(4, "add", 5) ; predict(num1=4, ...) ; defaults."""
    with Client("abidlabs/en2fr", api_name="/translate") as client:
        assert client.predict("hello") == "bonjour"
    with Client("gradio/calculator") as client:
        assert client.predict(4, "add", 5) == 9
        assert client.predict(num1=4, operation="add", num2=5) == 9
    with Client("abidlabs/image_generator") as client:
        image, params = client.predict(prompt="an astronaut riding a camel")
        assert Path(image).is_file() and params["steps"] == 20
        image, params = client.predict(prompt="an astronaut riding a camel", steps=25)
        assert params["steps"] == 25


def test_submit_result_and_callbacks(hub: HubServer) -> None:
    """Client(space=...); job = client.submit("Hello", api_name=...); job.result();
    result_callbacks=[print_result]."""
    seen: list[str] = []
    called = threading.Event()

    def print_result(x: str) -> None:
        seen.append(f"The translated result is: {x}")
        called.set()

    with Client(space="abidlabs/en2fr") as client:
        job = client.submit("Hello", api_name="/translate")
        assert job.result() == "Bonjour"
        job = client.submit("Hello", api_name="/translate", result_callbacks=[print_result])
        assert called.wait(30)
    assert seen == ["The translated result is: Bonjour"]


def test_status_and_done(hub: HubServer) -> None:
    """Client(src=...); job = client.submit(5, "add", 4, api_name="/predict");
    job.status() has code, rank, queue_size, eta, success, time; job.done()."""
    with Client(src="gradio/calculator") as client:
        job = client.submit(5, "add", 4, api_name="/predict")
        status = job.status()
        assert isinstance(status, StatusUpdate)
        for field in ("code", "rank", "queue_size", "eta", "success", "time"):
            assert hasattr(status, field)
        assert job.result() == 9 and job.done()
        assert job.status().code is Status.FINISHED and job.status().success


def test_cancel_started_and_queued(app_factory: Any) -> None:
    """job1.cancel() is False once it started; job2.cancel() is True while queued."""
    app = app_factory("slow")
    with Client(app.url) as client:
        job1 = client.submit(1.0, "one", api_name="/sleep")
        while job1.status().code is not Status.PROCESSING:
            time.sleep(0.02)
        job2 = client.submit(1.0, "two", api_name="/sleep")
        while job2.status().code is not Status.IN_QUEUE:
            time.sleep(0.02)
        assert job1.cancel() is False
        assert job2.cancel() is True
        assert job1.result() == "slept 1.0"


def test_generator_outputs_iteration_and_cancel(hub: HubServer) -> None:
    """job.outputs() while not done; `for o in job`; cancelling a generator mid-way."""
    with Client(src="gradio/count_generator") as client:
        job = client.submit(3, 0.05, api_name="/count")
        while not job.done():
            time.sleep(0.05)
        assert job.outputs() == ["0", "1", "2"]
        job = client.submit(3, 0.05, api_name="/count")
        assert list(job) == ["0", "1", "2"]
    with Client("abidlabs/test-yield") as client:
        job = client.submit(50, 0.1, api_name="/count")
        while len(job.outputs()) < 2:
            time.sleep(0.02)
        assert job.cancel() is True
        assert 2 <= len(job.outputs()) < 50


def test_session_state_and_reset(hub: HubServer) -> None:
    """The word counter with gr.State: state carries across predicts; reset_session()."""
    with Client("abidlabs/word_counter") as client:
        info = client.view_api(print_info=False, return_format="dict")
        assert isinstance(info, dict)
        assert [p["name"] for p in info["named_endpoints"]["/count"]["parameters"]] == ["word"]
        assert client.predict("hi", api_name="/count") == 0
        assert client.predict("hi", api_name="/count") == 1
        client.reset_session()
        assert client.predict("hi", api_name="/count") == 0
