"""`local: owner/name`: a Space's files run locally, in an environment of their own.

The Hub is the stand-in (`support.hub`, serving a small Space repository to
huggingface_hub's `snapshot_download`); pip runs for real, offline: the Space's one
requirement is a wheel built here and offered through PIP_FIND_LINKS with PIP_NO_INDEX.
The environments inherit this test environment's packages (`inherit_packages: true`), so
pip installs only that wheel rather than gradio from scratch.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import anyio
import huggingface_hub.constants
import pytest
from support.hub import HubServer

from runner.errors import ManifestError
from runner.launch._space import SpaceFiles, fetch_space, read_card
from runner.launch._venv import choose_python, space_environment
from runner.manifest import LocalReplica, load_manifest
from runner.run import RunOptions, run, validate_manifest

GRADIO = importlib.metadata.version("gradio")
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
SPACE = "alice/reporter"
README = (
    f'---\ntitle: Reporter\nsdk: gradio\nsdk_version: {GRADIO}\npython_version: "{PYTHON}"\n'
    "app_file: app.py\n---\n# Reporter\n"
)
APP = """\
import os

import gradio as gr
import spacerun_test_dep


def report(text):
    seen = os.environ.get("CUDA_VISIBLE_DEVICES")
    return f"{text} | {spacerun_test_dep.VALUE} | CUDA_VISIBLE_DEVICES={seen}"


demo = gr.Interface(fn=report, inputs="text", outputs="text")
demo.launch(server_port=7870)
"""


def build_wheel(folder: Path) -> Path:
    """A one-module wheel, `spacerun-test-dep 1.0`, written by hand (it is a zip)."""
    dist = "spacerun_test_dep-1.0.dist-info"
    files = {
        "spacerun_test_dep.py": "VALUE = 'from spacerun-test-dep'\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: spacerun-test-dep\nVersion: 1.0\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "spacerun_test_dep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"{dist}/RECORD", "\n".join(record) + "\n")
    return wheel


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    build_wheel(tmp_path / "wheels")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels"))
    monkeypatch.setenv("SPACERUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    with HubServer() as server:
        server.push(
            SPACE, {"README.md": README, "app.py": APP, "requirements.txt": "spacerun-test-dep\n"}
        )
        yield server


@pytest.mark.timeout(600)
def test_a_space_runs_locally_one_copy_per_gpu(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gpus: all over CUDA_VISIBLE_DEVICES=4,6: two copies of the Space's app, each on
    its device, with its requirement installed; the summary says which ran where and the
    run folder pins the commit."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(
        f"app:\n  replicas:\n    - local: {SPACE}\n      gpus: all\n      inherit_packages: true\n"
        "      ready_timeout: 8m\n"
        "inputs:\n  rows: [{text: a}, {text: b}, {text: c}, {text: d}, {text: e}, {text: f}]\n"
        f"output:\n  dir: {tmp_path / 'run'}\n"
    )
    options = RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False)
    summary = run(manifest, options)
    assert summary.exit_status == 0
    assert [(r.name, r.gpu) for r in summary.replicas] == [("local-1", "4"), ("local-2", "6")]
    stored = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert [r["gpu"] for r in stored["replicas"]] == ["4", "6"]
    where = {"local-1": "4", "local-2": "6"}
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    assert len(records) == 6
    for record in records:
        (output,) = record["outputs"].values()
        text = record["inputs"]["text"]
        device = where[record["replica"]]
        assert output == f"{text} | from spacerun-test-dep | CUDA_VISIBLE_DEVICES={device}"
    pins = json.loads((tmp_path / "run" / "spaces.json").read_text())
    assert pins == {SPACE: hub.spaces[SPACE].commits[-1][0]}


def test_a_resume_runs_the_pinned_commit_after_the_owner_pushed(
    hub: HubServer, tmp_path: Path
) -> None:
    """The commit first run is kept in the run folder; a new push does not change it."""
    first = hub.spaces[SPACE].commits[-1][0]
    said: list[str] = []

    async def fetch(pin_dir: Path | None) -> tuple[str, str]:
        files = await fetch_space(
            SPACE, None, token=None, endpoint=hub.url, pin_dir=pin_dir, on_status=said.append
        )
        return files.commit, files.app.read_text()

    assert anyio.run(fetch, tmp_path / "run") == (first, APP)
    second = hub.push(SPACE, {"README.md": README, "app.py": "print('v2')\n"})
    assert anyio.run(fetch, tmp_path / "run") == (first, APP)
    assert f"Space {SPACE}: commit {first[:12]} (pinned in this run folder)" in said
    assert anyio.run(fetch, tmp_path / "other-run") == (second, "print('v2')\n")


@pytest.mark.timeout(300)
def test_an_environment_is_made_once_and_reused_by_content(hub: HubServer, tmp_path: Path) -> None:
    """First time pip installs the requirement; the second time nothing is installed."""
    said: list[str] = []

    async def environment() -> str:
        files = await fetch_space(
            SPACE, None, token=None, endpoint=hub.url, pin_dir=None, on_status=said.append
        )
        return await space_environment(
            files,
            python=None,
            inherit=True,
            log_path=tmp_path / "install.log",
            on_status=said.append,
        )

    python = anyio.run(environment)
    assert any("installing its requirements into" in m for m in said)
    assert anyio.run(environment) == python
    assert said[-1].startswith(f"Space {SPACE}: reusing its environment ")
    probe = "import gradio, spacerun_test_dep, sys; print(spacerun_test_dep.__file__, sys.prefix)"
    found, prefix = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert found.startswith(prefix)  # installed into the Space's own environment
    assert "spacerun-test-dep" in (tmp_path / "install.log").read_text()


def test_a_python_version_that_is_not_installed_falls_back_and_says_so(hub: HubServer) -> None:
    said: list[str] = []

    async def files_with(card: str) -> SpaceFiles:
        hub.push(SPACE, {"README.md": card, "app.py": APP})
        return await fetch_space(
            SPACE, None, token=None, endpoint=hub.url, pin_dir=None, on_status=said.append
        )

    files = anyio.run(files_with, "---\nsdk: gradio\npython_version: '2.1'\n---\n")
    assert choose_python(files, None, said.append) == sys.executable
    assert (
        "asks for Python 2.1 (python_version in its README), but there is no python2.1" in said[-1]
    )
    assert choose_python(files, "/opt/python", said.append) == "/opt/python"


def test_read_card_reads_the_front_matter() -> None:
    card = read_card("---\nsdk: gradio\nsdk_version: 5.0.1\npython_version: 3.10\n---\n# x\n")
    assert (card.sdk, card.sdk_version, card.python_version, card.app_file) == (
        "gradio",
        "5.0.1",
        "3.10",  # as written, not the number 3.1 that YAML would make of it
        "app.py",
    )
    assert read_card("no front matter").app_file == "app.py"


def write(tmp_path: Path, replica: str) -> Path:
    path = tmp_path / "m.yaml"
    path.write_text(f"app:\n  replicas:\n    - {replica}\n")
    return path


def test_manifest_reads_local_spaces_gpus_and_ready_timeout(tmp_path: Path) -> None:
    manifest = load_manifest(
        write(
            tmp_path,
            "local: alice/reporter@v1.2\n      gpus: [0, 1]\n      per_gpu: 2\n"
            "      ready_timeout: 15m\n      inherit_packages: true",
        )
    )
    (replica,) = manifest.app.replicas
    assert isinstance(replica, LocalReplica)
    assert (replica.space, replica.revision, replica.script) == ("alice/reporter", "v1.2", None)
    assert (replica.gpus, replica.per_gpu, replica.ready_timeout) == (("0", "1"), 2, 900.0)
    again = tmp_path / "again.yaml"
    again.write_text(json.dumps(manifest.to_dict()))
    assert load_manifest(again).app.replicas == manifest.app.replicas
    every = load_manifest(write(tmp_path, "local: alice/reporter\n      gpus: all"))
    assert every.app.replicas[0] == LocalReplica(space="alice/reporter", gpus="all")


@pytest.mark.parametrize(
    ("replica", "message"),
    [
        ("local: a/b\n      gpus: [0]\n      count: 2", "give count or gpus, not both"),
        ("local: a/b\n      per_gpu: 2", "per_gpu applies with gpus:"),
        ("local: a/b\n      gpus: [0, 0]", "each GPU once"),
        ("local: a/b\n      gpus: []", "at least one GPU"),
        ("local: a/b\n      ready_timeout: soon", "ready_timeout"),
    ],
)
def test_manifest_rejects_bad_local_options(tmp_path: Path, replica: str, message: str) -> None:
    with pytest.raises(ManifestError, match=message):
        load_manifest(write(tmp_path, replica))


SAMPLE = Path(__file__).resolve().parents[2] / "sample_manifests" / "space_on_every_gpu.yaml"
EN2FR = """\
import gradio as gr

WORDS = {"good": "bon", "morning": "matin", "thank": "merci"}


def predict(text):
    return " ".join(WORDS.get(word.strip(".,!?").lower(), word) for word in text.split())


demo = gr.Interface(fn=predict, inputs="text", outputs="text")
demo.launch()
"""


@pytest.mark.timeout(300)
def test_the_sample_manifest_validates_against_the_stand_in(
    hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sample_manifests/space_on_every_gpu.yaml, with a stand-in abidlabs/en2fr of the
    same API (predict(text) -> text; the real one needs the internet and a model), on two
    "GPUs"; its environment inherits ours so that gradio is not installed again."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    hub.push(
        "abidlabs/en2fr",
        {"README.md": f"---\nsdk: gradio\nsdk_version: {GRADIO}\n---\n", "app.py": EN2FR},
    )
    manifest = load_manifest(SAMPLE, overrides=["app.replicas.0.inherit_packages=true"])
    (replica,) = manifest.app.replicas
    assert isinstance(replica, LocalReplica) and replica.gpus == "all"
    report = anyio.run(
        lambda: validate_manifest(manifest, on_message=lambda _: None, hub_endpoint=hub.url)
    )
    assert report.ok, report.format()
    assert report.submissions == 20
