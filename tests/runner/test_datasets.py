"""A batch that starts from a Hugging Face dataset and ends as one: the demo's espeak-ng
speech as an Audio dataset on the Hub stand-in, read by spacerun (revision pinned, audio
cells as files), transcribed by the bundled app, pushed back as a dataset, and loaded
again with `datasets.load_dataset`; an interrupted run resumed with no duplicate row."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from support.apps import RunningApp, start_app
from support.cli import ROOT, cli_env, spacerun
from support.hub import HubServer
from support.speech_dataset import audio_parquet, hub_python, sentences, word_match

TOKEN = "hf_alice_datasets_token"
APP = ROOT / "sample_manifests" / "apps" / "transcribe.py"
EXPECTED = {path.name: text for path, text in sentences()}


@pytest.fixture(scope="module")
def speech_app() -> Iterator[RunningApp]:
    app = start_app(str(APP))
    yield app
    app.stop()


@pytest.fixture
def dataset_hub() -> Iterator[HubServer]:
    with HubServer() as hub:
        hub.add_user("alice", token=TOKEN)
        hub.add_dataset("bob/speech", {"data/train-00000-of-00001.parquet": audio_parquet()})
        yield hub


def hub_env(hub: HubServer, home: Path) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(home)}


def write_manifest(path: Path, app: RunningApp, extra: str = "") -> Path:
    path.write_text(
        "name: speech\n"
        "app:\n"
        "  endpoint: /transcribe\n"
        f"  replicas: [{{url: {app.url}}}]\n"
        "inputs:\n"
        "  dataset: bob/speech\n"
        "  map: {audio: '{audio.path}'}\n"
        "run: {concurrency: 2}\n"
        "output:\n"
        f"  dir: {path.parent / 'run'}\n"
        "  push_to_hub:\n"
        "    repo: alice/speech-text\n" + extra
    )
    return path


def pushed_rows(hub: HubServer, repo: str) -> list[dict[str, Any]]:
    """Every row of the repo's Parquet shards at its head, as stored on the Hub."""
    _, files = hub.datasets[repo].files_at("main")
    rows: list[dict[str, Any]] = []
    for name in sorted(f for f in files if f.endswith(".parquet")):
        rows += pq.read_table(io.BytesIO(files[name])).to_pylist()
    return rows


LOAD_BACK = """
import json, datasets
ds = datasets.load_dataset("alice/speech-text", split="train")
print(json.dumps({
    "features": {k: type(v).__name__ for k, v in ds.features.items()},
    "rows": [
        {k: (v["bytes"].hex() if isinstance(v, dict) else v) for k, v in row.items()}
        for row in ds.cast_column("audio", datasets.Audio(decode=False))
    ],
}))
"""


def test_an_audio_dataset_is_transcribed_and_pushed_back_as_a_dataset(
    dataset_hub: HubServer, speech_app: RunningApp, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "speech.yaml", speech_app)
    env = hub_env(dataset_hub, tmp_path / "home")
    done = spacerun("run", str(manifest), env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    run_dir = tmp_path / "run"
    pin = json.loads((run_dir / "dataset.json").read_text())
    assert pin["revision"] == dataset_hub.datasets["bob/speech"].head()
    media = sorted((run_dir / "media").iterdir())
    assert len(media) == 10 and {p.suffix for p in media} == {".wav"}
    assert dataset_hub.datasets["alice/speech-text"].private  # private unless said

    loaded = hub_python(LOAD_BACK, dataset_hub.url, TOKEN, tmp_path / "home")
    assert loaded["features"]["audio"] == "Audio"
    rows = loaded["rows"]
    assert len(rows) == 10 and len({r["spacerun_key"] for r in rows}) == 10
    by_audio = {bytes.fromhex(r["audio"]): r for r in rows}
    matches = []
    for path, text in sentences():
        row = by_audio[path.read_bytes()]  # the audio pushed is the audio read, byte for byte
        with wave.open(io.BytesIO(path.read_bytes())) as playable:
            assert playable.getframerate() == 16000
        assert row["status"] == "ok" and row["error"] is None
        matches.append(word_match(text, row["Transcript"]))
    assert sum(matches) / len(matches) >= 0.75, matches

    _, files = dataset_hub.datasets["alice/speech-text"].files_at("main")
    card = files["README.md"].decode()
    assert "/transcribe" in card and "10 ok" in card and "spacerun run manifest.yaml" in card
    assert TOKEN not in card and f"Gradio: {speech_app.gradio_version}" in card


def test_a_resume_reads_the_pinned_revision_and_restart_the_newest(
    dataset_hub: HubServer, speech_app: RunningApp, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "speech.yaml", speech_app)
    env = hub_env(dataset_hub, tmp_path / "home")
    first = spacerun("run", str(manifest), "--set", "inputs.limit=3", env=env, timeout=240)
    assert first.returncode == 0, first.stderr
    pinned = dataset_hub.datasets["bob/speech"].head()
    # The owner pushes a new version: two sentences only.
    two = audio_parquet(sentences()[-2:])
    dataset_hub.datasets["bob/speech"].commit({"data/train-00000-of-00001.parquet": two})

    again = spacerun("run", str(manifest), env=env, timeout=240)  # resumed: the rest of v1
    assert again.returncode == 0, again.stderr
    run_dir = tmp_path / "run"
    assert json.loads((run_dir / "dataset.json").read_text())["revision"] == pinned
    assert len(pushed_rows(dataset_hub, "alice/speech-text")) == 10

    fresh = spacerun("run", str(manifest), "--restart", env=env, timeout=240)
    assert fresh.returncode == 0, fresh.stderr
    newest = dataset_hub.datasets["bob/speech"].head()
    assert json.loads((run_dir / "dataset.json").read_text())["revision"] == newest != pinned
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_an_interrupted_run_resumes_with_no_duplicate_row_pushed(
    dataset_hub: HubServer, speech_app: RunningApp, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "speech.yaml", speech_app, "    every: 2 rows\n")
    env = {**cli_env(), **hub_env(dataset_hub, tmp_path / "home")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner.cli",
            "run",
            str(manifest),
            "--set",
            "run.concurrency=1",
            "--set",
            "run.rate=2/s",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    results = tmp_path / "run" / "results.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if results.exists() and len(results.read_text().splitlines()) >= 4:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    repo = dataset_hub.datasets["alice/speech-text"]
    first = pushed_rows(dataset_hub, "alice/speech-text")
    assert 4 <= len(first) < 10 and len(repo.branches["main"]) >= 2  # pushed while running
    assert len({r["spacerun_key"] for r in first}) == len(first)

    done = spacerun("run", str(manifest), env=env, timeout=240)
    assert done.returncode == 0, done.stderr
    rows = pushed_rows(dataset_hub, "alice/speech-text")
    keys = [r["spacerun_key"] for r in rows]
    assert len(keys) == len(set(keys)) == 10
    recorded = {json.loads(line)["key"] for line in results.read_text().splitlines()}
    assert set(keys) == recorded


def test_spacerun_push_sends_a_finished_run_folder(
    dataset_hub: HubServer, speech_app: RunningApp, tmp_path: Path
) -> None:
    manifest = write_manifest(tmp_path / "speech.yaml", speech_app)
    env = hub_env(dataset_hub, tmp_path / "home")
    ran = spacerun("run", str(manifest), "--set", "inputs.limit=2", env=env, timeout=240)
    assert ran.returncode == 0, ran.stderr
    pushed = spacerun("push", str(tmp_path / "run"), "alice/copy", "--public", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed 2 new and 0 updated results to alice/copy" in pushed.stdout
    assert not dataset_hub.datasets["alice/copy"].private
    assert len(pushed_rows(dataset_hub, "alice/copy")) == 2
    again = spacerun("push", str(tmp_path / "run"), "alice/copy", env=env)
    assert "already holds every result" in again.stdout
    anonymous = {**env, "HF_TOKEN": ""}
    refused = spacerun("push", str(tmp_path / "run"), "alice/other", env=anonymous)
    assert refused.returncode != 0 and "alice/other" in refused.stderr


RUN_AT = """
import sys
import runner
options = runner.RunOptions(hub_endpoint=sys.argv[2], progress="quiet", overrides=sys.argv[3:])
summary = runner.run(sys.argv[1], options)
print(summary)
"""


def test_the_dataset_is_read_from_the_runs_hub_endpoint_as_the_push_goes(
    dataset_hub: HubServer, speech_app: RunningApp, tmp_path: Path
) -> None:
    """`hub_endpoint` (not HF_ENDPOINT, which points nowhere here) is where the dataset
    is read from, as it is where the results are pushed."""
    manifest = write_manifest(tmp_path / "speech.yaml", speech_app)
    nowhere = "http://127.0.0.1:9"  # the discard port: nothing listens
    env = {**cli_env(), **hub_env(dataset_hub, tmp_path / "home"), "HF_ENDPOINT": nowhere}
    args = [str(manifest), dataset_hub.url, "inputs.limit=2"]
    done = subprocess.run(
        [sys.executable, "-c", RUN_AT, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pin = json.loads((tmp_path / "run" / "dataset.json").read_text())
    assert pin["revision"] == dataset_hub.datasets["bob/speech"].head()
    rows = pushed_rows(dataset_hub, "alice/speech-text")
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert {r["audio"]["bytes"] for r in rows} == {p.read_bytes() for p, _ in sentences()[:2]}


def test_media_cells_are_written_when_sent_once_per_content(
    speech_app: RunningApp, tmp_path: Path
) -> None:
    """Validation reads every row but writes no media (a large audio dataset is not all
    on disk before the first job); the submissions write each content once, by its hash."""
    os.environ.pop("HF_DATASETS_OFFLINE", None)
    parquet = tmp_path / "src" / "data" / "train-00000-of-00001.parquet"
    parquet.parent.mkdir(parents=True)
    parquet.write_bytes(audio_parquet(sentences()[:3] + sentences()[:1]))  # one twice
    from jobs import Client
    from runner.inputs import iter_submissions, validate_submissions
    from runner.manifest import manifest_from_data

    manifest = manifest_from_data(
        {
            "app": {"url": speech_app.url, "endpoint": "/transcribe"},
            "inputs": {"dataset": "src", "map": {"audio": "{audio.path}"}},
            "output": {"dir": "run"},
        },
        path=tmp_path / "m.yaml",
        label="m",
    )
    with Client(speech_app.url) as client:
        schema = client.schema
    report = validate_submissions(manifest, schema)
    assert report.exit_status == 0 and report.rows == 4, report.format()
    media = tmp_path / "run" / "media"
    assert not media.exists() or not any(media.iterdir())

    submissions = list(iter_submissions(manifest, schema))
    files = [Path(s.inputs["audio"]) for s in submissions]
    assert files[0] == files[3] and len(set(files)) == 3
    assert submissions[0].key == submissions[3].key != submissions[1].key
    assert sorted(media.iterdir()) == sorted(set(files))
    for file, (source, _) in zip(files, sentences()[:3], strict=False):
        assert file.parent == media and file.suffix == ".wav"
        assert file.read_bytes() == source.read_bytes()


def test_runner_map_takes_a_dataset_and_returns_one(speech_app: RunningApp, tmp_path: Path) -> None:
    import datasets

    import runner

    source = tmp_path / "speech.parquet"
    source.write_bytes(audio_parquet(sentences()[:4]))
    rows = datasets.Dataset.from_parquet(str(source))
    options: dict[str, Any] = {
        "app": speech_app.url,
        "endpoint": "/transcribe",
        "map": {"audio": "{audio}"},
        "run_dir": tmp_path / "map",
        "progress": "quiet",
    }
    out = runner.map(rows, as_dataset=True, **options)
    assert isinstance(out, datasets.Dataset)
    assert type(out.features["audio"]).__name__ == "Audio"
    assert out.features["outputs.Transcript"] == datasets.Value("string")
    assert out["status"] == ["ok"] * 4 and out["text"] == [t for _, t in sentences()[:4]]
    pairs = zip(out["text"], out["outputs.Transcript"], strict=True)
    scores = [word_match(text, got) for text, got in pairs]
    assert sum(scores) / 4 >= 0.75, scores
    first = out.cast_column("audio", datasets.Audio(decode=False))[0]["audio"]
    assert first["bytes"] == sentences()[0][0].read_bytes()

    streamed = runner.map(rows.to_iterable_dataset(), **options)  # resumed: nothing resent
    assert list(streamed["status"]) == ["ok"] * 4
    assert list(streamed["outputs.Transcript"]) == out["outputs.Transcript"]
    assert len((tmp_path / "map" / "results.jsonl").read_text().splitlines()) == 4
