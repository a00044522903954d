"""The offline demo apps bundled in sample_manifests/apps/ and their sample data.

The transcription app is also run as a real server and called over the Gradio
protocol with plain httpx, the way the sample manifest will drive it.
"""

from __future__ import annotations

import contextlib
import csv
import difflib
import importlib.util
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import gradio as gr
import httpx
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "sample_manifests" / "apps"
DATA = ROOT / "sample_manifests" / "data"
SPEECH = DATA / "speech"
STARTUP_SECONDS = 90
CALL_SECONDS = 60


def _load_app(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"demo_app_{name}", APPS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered before exec: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def transcriber() -> ModuleType:
    return _load_app("transcribe")


@pytest.fixture(scope="module")
def translator() -> ModuleType:
    return _load_app("translate")


@pytest.fixture(scope="module")
def imagegen() -> ModuleType:
    return _load_app("imagegen")


def _expected() -> list[tuple[Path, str]]:
    with (SPEECH / "expected.csv").open(newline="") as f:
        return [(SPEECH / row["file"], row["text"]) for row in csv.DictReader(f)]


def _word_match(reference: str, hypothesis: str) -> float:
    """Share of the reference words found, in order, in the hypothesis."""
    ref, hyp = reference.lower().split(), hypothesis.lower().split()
    blocks = difflib.SequenceMatcher(a=ref, b=hyp, autojunk=False).get_matching_blocks()
    return sum(block.size for block in blocks) / len(ref)


def _read_mono_int16(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
        frames = wav.readframes(wav.getnframes())
        return wav.getframerate(), np.frombuffer(frames, dtype="<i2").astype(np.float64)


def _write_wav(path: Path, rate: int, samples: np.ndarray) -> None:
    """Write int16 samples, shape (frames,) or (frames, channels)."""
    samples = samples.reshape(len(samples), -1)
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(samples.shape[1])
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes())


# -- sample data ----------------------------------------------------------------


def test_speech_samples_are_16k_mono_16bit_and_listed() -> None:
    """Every listed WAV exists in the recogniser's native format; the set stays small."""
    samples = _expected()
    assert 6 <= len(samples) <= 10
    assert {path.name for path, _ in samples} == {p.name for p in SPEECH.glob("*.wav")}
    for path, text in samples:
        with wave.open(str(path), "rb") as wav:
            assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
            assert 0.5 < wav.getnframes() / 16000 < 6, path.name
        assert text.strip()
    assert sum(path.stat().st_size for path, _ in samples) < 1_000_000


def test_sample_csvs_have_the_columns_the_manifests_read() -> None:
    """sentences.csv has ~20 rows of `text`; sweep_prompts.csv has a few `prompt`s."""
    with (DATA / "sentences.csv").open(newline="") as f:
        sentences = [row["text"] for row in csv.DictReader(f)]
    with (DATA / "sweep_prompts.csv").open(newline="") as f:
        prompts = [row["prompt"] for row in csv.DictReader(f)]
    assert len(sentences) >= 15 and all(s.strip() for s in sentences)
    assert 2 <= len(prompts) <= 10 and all(p.strip() for p in prompts)


# -- transcribe() in process ------------------------------------------------------


@pytest.mark.parametrize("index", [0, 4])
def test_transcribe_recognises_a_sample(transcriber: ModuleType, index: int) -> None:
    """A committed 16 kHz sample comes back as (nearly) the sentence spoken."""
    path, text = _expected()[index]
    assert _word_match(text, transcriber.transcribe(str(path))) >= 0.75


def test_transcribe_converts_44k_stereo(transcriber: ModuleType, tmp_path: Path) -> None:
    """A 44.1 kHz stereo WAV gives the same text as the 16 kHz mono original."""
    path, _ = _expected()[1]
    rate, mono = _read_mono_int16(path)
    # Upsample by linear interpolation: independent of the app's own resampler.
    n_out = len(mono) * 44100 // rate
    upsampled = np.interp(np.arange(n_out) * rate / 44100, np.arange(len(mono)), mono)
    stereo = np.stack([upsampled, upsampled * 0.8], axis=1)
    converted = tmp_path / "stereo44k.wav"
    _write_wav(converted, 44100, stereo)
    assert transcriber.transcribe(str(converted)) == transcriber.transcribe(str(path))


def test_transcribe_gives_the_same_text_after_other_audio(transcriber: ModuleType) -> None:
    """Decoding other audio in between does not change a file's transcript."""
    (first, _), (second, _) = _expected()[2:4]
    before = transcriber.transcribe(str(first))
    transcriber.transcribe(str(second))
    assert transcriber.transcribe(str(first)) == before


def test_transcribe_rejects_a_non_wav_file(transcriber: ModuleType, tmp_path: Path) -> None:
    """A file that is not PCM WAV fails with a message naming the expected format."""
    bogus = tmp_path / "speech.mp3"
    bogus.write_bytes(b"ID3\x04\x00" + bytes(200))
    with pytest.raises(gr.Error, match="WAV"):
        transcriber.transcribe(str(bogus))


# -- transcribe.py as a server -------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _is_transcribe(response: httpx.Response) -> bool:
    try:
        config = response.json()
    except ValueError:
        return False
    return any(d.get("api_name") == "transcribe" for d in config.get("dependencies", []))


def _wait_for_config(proc: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    with httpx.Client(timeout=2.0, trust_env=False) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"transcribe.py exited with {proc.returncode}:\n{log.read_text()}")
            try:
                response = http.get(f"{url}/config")
            except httpx.TransportError:
                response = None
            # Another process may grab the port before the app binds it; only this
            # app's /config (with its endpoint) counts as ready.
            if response is not None and response.status_code == 200 and _is_transcribe(response):
                return
            # Polling is the only readiness signal a separate process gives.
            time.sleep(0.1)
    pytest.fail(f"transcribe.py did not answer /config in {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def transcribe_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("transcribe-app")
    port = _free_port()
    env = dict(
        os.environ,
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_TEMP_DIR=str(workdir / "gradio"),
        PYTHONUNBUFFERED="1",
    )
    env.pop("GRADIO_SERVER_NAME", None)  # the app's default must be loopback
    log = workdir / "app.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, str(APPS / "transcribe.py")],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_for_config(proc, url, log)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _submit_files(http: httpx.Client, paths: list[Path]) -> tuple[str, dict[str, Path]]:
    """Upload each WAV and queue one /transcribe call per file, all in one session.

    Returns the session hash and event_id -> file.
    """
    config = http.get("/config").json()
    prefix = config.get("api_prefix", "")
    (fn_index,) = [d["id"] for d in config["dependencies"] if d["api_name"] == "transcribe"]
    session = uuid.uuid4().hex
    events: dict[str, Path] = {}
    for path in paths:
        with path.open("rb") as f:
            upload = http.post(f"{prefix}/upload", files={"files": (path.name, f, "audio/wav")})
        upload.raise_for_status()
        (server_path,) = upload.json()
        file_data = {
            "path": server_path,
            "orig_name": path.name,
            "meta": {"_type": "gradio.FileData"},
        }
        join = http.post(
            f"{prefix}/queue/join",
            json={"data": [file_data], "fn_index": fn_index, "session_hash": session},
        )
        join.raise_for_status()
        events[join.json()["event_id"]] = path
    return session, events


def _completions(http: httpx.Client, session: str, pending: set[str]) -> dict[str, Any]:
    """Read the session's stream until every pending event has completed."""
    prefix = http.get("/config").json().get("api_prefix", "")
    done: dict[str, Any] = {}
    # Messages are buffered server-side from the first join, so opening now loses none.
    with http.stream("GET", f"{prefix}/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[len("data:") :])
            if message["msg"] == "process_completed":
                done[message["event_id"]] = message
            if pending <= done.keys() or message["msg"] == "close_stream":
                break
    return done


def test_transcribe_server_matches_expected_text(transcribe_url: str) -> None:
    """Over HTTP, the samples come back at >= 0.7 word match on average."""
    samples = dict(_expected())
    timeout = httpx.Timeout(CALL_SECONDS, connect=5.0)
    with httpx.Client(base_url=transcribe_url, timeout=timeout, trust_env=False) as http:
        session, submitted = _submit_files(http, list(samples))
        done = _completions(http, session, set(submitted))
    assert done.keys() == submitted.keys()
    scores = []
    for event_id, path in submitted.items():
        message = done[event_id]
        assert message["success"], message
        (transcript,) = message["output"]["data"]
        scores.append(_word_match(samples[path], transcript))
    assert sum(scores) / len(scores) >= 0.7, scores


def test_transcribe_server_reports_a_bad_file(transcribe_url: str, tmp_path: Path) -> None:
    """A non-WAV upload completes unsuccessfully with the expected-format message."""
    bogus = tmp_path / "notes.wav"
    bogus.write_text("this is not audio")
    with httpx.Client(base_url=transcribe_url, timeout=CALL_SECONDS, trust_env=False) as http:
        session, submitted = _submit_files(http, [bogus])
        (message,) = _completions(http, session, set(submitted)).values()
    assert message["success"] is False
    assert "WAV" in message["output"]["error"]


# -- translate.py ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("fr", "Le chat est noir."),
        ("es", "El gato es negro."),
        ("de", "Die Katze ist schwarz."),
    ],
)
def test_translate_looks_up_phrases(translator: ModuleType, language: str, expected: str) -> None:
    """Known phrases are translated with punctuation and capitals kept."""
    assert translator.translate("The cat is black.", language) == expected


def test_translate_keeps_unknown_words(translator: ModuleType) -> None:
    """Words missing from the table (here a name) pass through unchanged."""
    assert translator.translate("My name is Anna.", "fr") == "Je m'appelle Anna."


def test_translate_covers_the_sample_sentences(translator: ModuleType) -> None:
    """Every sentence of sentences.csv changes in every language."""
    with (DATA / "sentences.csv").open(newline="") as f:
        sentences = [row["text"] for row in csv.DictReader(f)]
    for language in translator.LANGUAGES:
        for sentence in sentences:
            assert translator.translate(sentence, language) != sentence, (language, sentence)


def test_translate_rejects_an_unknown_language(translator: ModuleType) -> None:
    """A target outside fr/es/de is an error naming the choices."""
    with pytest.raises(gr.Error, match="fr"):
        translator.translate("Hello.", "it")


# -- imagegen.py ----------------------------------------------------------------------


def _png(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_imagegen_is_deterministic_per_seed(imagegen: ModuleType) -> None:
    """The same prompt and seed give the same PNG; another seed a different one."""
    first, params = imagegen.generate("a lighthouse at dusk", 7)
    again, _ = imagegen.generate("a lighthouse at dusk", 7)
    other, _ = imagegen.generate("a lighthouse at dusk", 8)
    assert _png(first) == _png(again)
    assert _png(first) != _png(other)
    assert first.size == (256, 256)
    assert params == {
        "prompt": "a lighthouse at dusk",
        "seed": 7,
        "steps": 20,
        "guidance": 7.5,
        "width": 256,
        "height": 256,
    }


def test_imagegen_steps_and_guidance_change_the_image(imagegen: ModuleType) -> None:
    """Steps and guidance both show in the pixels."""
    base = np.asarray(imagegen.generate("an island", 1, 20, 7.5)[0])
    fewer_steps = np.asarray(imagegen.generate("an island", 1, 5, 7.5)[0])
    more_guidance = np.asarray(imagegen.generate("an island", 1, 20, 15.0)[0])
    assert not np.array_equal(base, fewer_steps)
    assert not np.array_equal(base, more_guidance)


def test_imagegen_rejects_out_of_range_steps(imagegen: ModuleType) -> None:
    """Steps outside 1..50 are refused with the allowed range in the message."""
    with pytest.raises(gr.Error, match="between 1 and 50"):
        imagegen.generate("an island", 1, 0)


def test_demo_endpoints_have_the_names_the_manifests_use(
    transcriber: ModuleType, translator: ModuleType, imagegen: ModuleType
) -> None:
    """Each app exposes its endpoint under the documented name and parameters."""
    expected = {
        transcriber: ("/transcribe", ["audio"]),
        translator: ("/translate", ["text", "target_language"]),
        imagegen: ("/generate", ["prompt", "seed", "steps", "guidance"]),
    }
    for module, (api_name, parameters) in expected.items():
        endpoints = module.build_demo().get_api_info()["named_endpoints"]
        assert list(endpoints) == [api_name]
        assert [p["parameter_name"] for p in endpoints[api_name]["parameters"]] == parameters
