"""`inputs.dataset` as users name one, read through `datasets` from the Hub stand-in or a
local folder: a repo with config and split, the parquet conversion ref, CSV files on
`hf://` with a glob, a `save_to_disk` folder; the Hub's refusals (missing, private,
gated) as errors saying what to do; nested fields in `map`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from support.cli import ROOT, spacerun
from support.hub import CONVERT_REF, HubServer
from support.speech_dataset import audio_parquet, hub_python, sentences

from runner.errors import ManifestError
from runner.inputs import iter_rows
from runner.manifest import load_manifest, manifest_from_data

TOKEN = "hf_alice_sources_token"

READ = """
import json, sys
from pathlib import Path
from runner.errors import ManifestError
from runner.inputs import iter_rows
from runner.manifest import manifest_from_data
inputs = json.loads(sys.argv[1]) if len(sys.argv) > 1 else json.loads({inputs!r})
data = {{"app": {{"url": "http://127.0.0.1:9"}}, "inputs": inputs, "output": {{"dir": {run!r}}}}}
try:
    manifest = manifest_from_data(data, path=Path({run!r}).parent / "m.yaml", label="m")
    print(json.dumps({{"rows": [{{"where": r.where, **r.values}} for r in iter_rows(manifest)]}}))
except ManifestError as exc:
    print(json.dumps({{"error": str(exc)}}))
"""


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.add_user("alice", token=TOKEN)
        yield server


def read(hub: HubServer, tmp_path: Path, inputs: dict[str, Any], token: str | None = TOKEN) -> Any:
    code = READ.format(inputs=json.dumps(inputs), run=str(tmp_path / "run"))
    return hub_python(code, hub.url, token, tmp_path / "home")


def csv_bytes(*rows: str) -> bytes:
    return ("text,lang\n" + "\n".join(rows) + "\n").encode()


def test_a_config_and_split_named_in_the_card(hub: HubServer, tmp_path: Path) -> None:
    card = {
        "configs": [
            {
                "config_name": "short",
                "data_files": [
                    {"split": "train", "path": "short/train-*.csv"},
                    {"split": "test", "path": "short/test-*.csv"},
                ],
            }
        ]
    }
    readme = f"---\n{yaml.safe_dump(card)}---\n# texts\n".encode()
    hub.add_dataset(
        "bob/texts",
        {
            "README.md": readme,
            "short/train-0.csv": csv_bytes("hello,en", "bonjour,fr"),
            "short/test-0.csv": csv_bytes("hallo,de"),
        },
    )
    spec = {"name": "bob/texts", "config": "short", "split": "test"}
    assert read(hub, tmp_path, {"dataset": spec})["rows"] == [
        {"where": "bob/texts (row 0)", "text": "hallo", "lang": "de"}
    ]
    missing = read(hub, tmp_path / "b", {"dataset": {**spec, "split": "dev"}})
    assert "has no split 'dev'" in missing["error"] and "train, test" in missing["error"]


def test_the_parquet_conversion_ref(hub: HubServer, tmp_path: Path) -> None:
    repo = hub.add_dataset("bob/converted", {"texts.csv": csv_bytes("only on main,en")})
    parquet = audio_parquet(sentences()[:2])
    repo.commit({"default/train/0000.parquet": parquet}, branch=CONVERT_REF)
    got = read(hub, tmp_path, {"dataset": {"name": "bob/converted", "revision": CONVERT_REF}})
    assert [r["text"] for r in got["rows"]] == [t for _, t in sentences()[:2]]
    pin = json.loads((tmp_path / "run" / "dataset.json").read_text())
    assert pin["revision"] == repo.head(CONVERT_REF)


def test_csv_files_on_hf_with_a_glob(hub: HubServer, tmp_path: Path) -> None:
    repo = hub.add_dataset(
        "bob/csvs",
        {"data/a.csv": csv_bytes("one,en"), "data/b.csv": csv_bytes("two,en"), "x.txt": b"-"},
    )
    got = read(hub, tmp_path, {"dataset": "hf://datasets/bob/csvs/data/*.csv"})
    assert [r["text"] for r in got["rows"]] == ["one", "two"]
    assert json.loads((tmp_path / "run" / "dataset.json").read_text())["revision"] == repo.head()


READ_AT = """
import json, sys
from pathlib import Path
from runner.inputs import iter_rows, reading_from_hub
from runner.manifest import manifest_from_data
run = Path(sys.argv[2])
data = {"app": {"url": "http://127.0.0.1:9"}, "inputs": {"dataset": sys.argv[3]},
        "output": {"dir": str(run)}}
manifest = manifest_from_data(data, path=run.parent / "m.yaml", label="m")
with reading_from_hub(sys.argv[1]):
    print(json.dumps([r.values["text"] for r in iter_rows(manifest)]))
"""


def test_a_hub_endpoint_given_is_read_rather_than_hf_endpoint(
    hub: HubServer, tmp_path: Path
) -> None:
    """A run's `hub_endpoint` is where a repo and an hf:// path are read from, whatever
    HF_ENDPOINT (read by `datasets` at import) says; here it points nowhere."""
    hub.add_dataset(
        "bob/csvs", {"data/a.csv": csv_bytes("one,en"), "data/b.csv": csv_bytes("two,en")}
    )
    for n, name in enumerate(["bob/csvs", "hf://datasets/bob/csvs/data/*.csv"]):
        argv = ["-", hub.url, str(tmp_path / f"run{n}"), name]
        code = f"import sys; sys.argv = {argv!r}\n" + READ_AT
        assert hub_python(code, "http://127.0.0.1:9", TOKEN, tmp_path / "home") == ["one", "two"]


def test_the_hubs_refusals_say_what_to_do(hub: HubServer, tmp_path: Path) -> None:
    hub.add_dataset("alice/private", {"a.csv": csv_bytes("x,en")}, private=True)
    hub.add_dataset("bob/gated", {"a.csv": csv_bytes("x,en")}, gated="manual")
    missing = read(hub, tmp_path / "1", {"dataset": "bob/nothing"})
    assert "no dataset bob/nothing on the Hub, or it is private" in missing["error"]
    anonymous = read(hub, tmp_path / "2", {"dataset": "alice/private"}, token=None)
    assert "no dataset alice/private on the Hub, or it is private" in anonymous["error"]
    owner = read(hub, tmp_path / "3", {"dataset": "alice/private"})
    assert owner["rows"][0]["text"] == "x"
    gated = read(hub, tmp_path / "4", {"dataset": "bob/gated"})
    assert "bob/gated is gated: ask for access" in gated["error"]
    hub.datasets["bob/gated"].granted.add("alice")
    assert read(hub, tmp_path / "5", {"dataset": "bob/gated"})["rows"][0]["text"] == "x"
    revision = read(hub, tmp_path / "6", {"dataset": {"name": "bob/gated", "revision": "v9"}})
    assert "has no revision 'v9'" in revision["error"]


def local_manifest(tmp_path: Path, name: str, mapping: dict[str, str] | None = None) -> Any:
    inputs: dict[str, Any] = {"dataset": name, **({"map": mapping} if mapping else {})}
    data = {"app": {"url": "http://127.0.0.1:9"}, "inputs": inputs, "output": {"dir": "run"}}
    return manifest_from_data(data, path=tmp_path / "m.yaml", label="m")


def test_a_save_to_disk_folder_and_a_change_under_its_pin(tmp_path: Path) -> None:
    import datasets

    source = tmp_path / "speech.parquet"
    source.write_bytes(audio_parquet(sentences()[:3]))
    datasets.Dataset.from_parquet(str(source)).save_to_disk(str(tmp_path / "saved"))
    manifest = local_manifest(tmp_path, "saved", {"audio": "{audio.path}"})
    rows = list(iter_rows(manifest, skip=1))
    assert [r.index for r in rows] == [1, 2]
    assert Path(rows[0].values["audio"].write()).read_bytes() == sentences()[1][0].read_bytes()
    assert len(list(iter_rows(manifest))) == 3  # same folder, same pin

    (tmp_path / "saved" / "extra.txt").write_text("changed")
    with pytest.raises(ManifestError, match="changed since this run started"):
        list(iter_rows(manifest))


def test_map_reads_nested_fields(tmp_path: Path) -> None:
    rows = [
        {"translation": {"en": "cat", "fr": "chat"}, "tags": ["a", "b"]},
        {"translation": {"en": "dog", "fr": "chien"}, "tags": ["c", "d"]},
    ]
    folder = tmp_path / "nested"
    folder.mkdir()
    (folder / "train.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    manifest = local_manifest(tmp_path, "nested")
    read_rows = [r.values for r in iter_rows(manifest)]
    assert read_rows == rows

    from runner.inputs._templates import compile_template, render_template

    template = compile_template("{translation.fr} ({tags.1})")
    assert render_template(template, read_rows[1]) == "chien (d)"
    with pytest.raises(KeyError):
        render_template(compile_template("{translation.de}"), read_rows[0])


def test_the_sample_manifest_validates_against_the_stand_in(
    hub: HubServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`spacerun validate` of the sample reads its dataset (config and split as the real
    repo names them) from the stand-in and checks every row against the bundled app."""
    monkeypatch.setenv("HF_USER", "alice")
    sample = ROOT / "sample_manifests" / "dataset_transcribe.yaml"
    assert sample.read_text().startswith("#"), "each sample says in a comment what it shows"
    manifest = load_manifest(sample)
    assert manifest.output.push_to_hub is not None
    assert manifest.output.push_to_hub.repo == "alice/librispeech-dummy-transcripts"
    spec = manifest.inputs.dataset
    assert spec is not None and spec.config is not None
    card = {
        "configs": [
            {
                "config_name": spec.config,
                "data_files": [{"split": spec.split, "path": f"{spec.config}/*.parquet"}],
            }
        ]
    }
    readme = f"---\n{yaml.safe_dump(card)}---\n".encode()
    files = {"README.md": readme, f"{spec.config}/0000.parquet": audio_parquet()}
    hub.add_dataset(spec.name, files)
    env = {"HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN, "HF_HOME": str(tmp_path / "home")}
    run_dir = f"output.dir={tmp_path / 'run'}"
    done = spacerun("validate", str(sample), "--set", run_dir, env=env, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 rows" in done.stdout, done.stdout
    media = tmp_path / "run" / "media"  # checked, not written: a run writes each when sent
    assert not media.exists() or not any(media.iterdir())


def test_the_manifest_keys_and_their_mistakes(tmp_path: Path) -> None:
    def load(inputs: Any, output: Any = None) -> Any:
        data = {"app": {"url": "http://127.0.0.1:9"}, "inputs": inputs}
        if output is not None:
            data["output"] = output
        return manifest_from_data(data, path=tmp_path / "m.yaml", label="m")

    every = {"push_to_hub": {"repo": "me/out", "every": ["5 rows", "2m"], "private": False}}
    manifest = load({"dataset": {"name": "bob/x", "split": "test"}}, every)
    push = manifest.output.push_to_hub
    assert (push.repo, push.private, push.every_rows, push.every_seconds) == (
        "me/out",
        False,
        5,
        120.0,
    )
    assert manifest.to_dict()["output"]["push_to_hub"]["every"] == ["5 rows", "2m"]
    assert manifest.inputs.dataset == load(manifest.to_dict()["inputs"]).inputs.dataset
    mistakes = [
        ({"dataset": "not a repo"}, None, "neither a folder"),
        ({"dataset": "hf://models/bob/x/a.csv"}, None, "expected hf://datasets/owner/name/"),
        ({"dataset": {"name": "bob/x", "splt": "a"}}, None, "did you mean 'split'"),
        ({"rows": [{"a": 1}], "dataset": "bob/x"}, None, "give one source of rows"),
        ({"dataset": "bob/x"}, {"push_to_hub": "nope"}, "expected a dataset id"),
        ({"dataset": "bob/x"}, {"push_to_hub": {"repo": "a/b", "every": "0s"}}, "more than zero"),
    ]
    for inputs, output, message in mistakes:
        with pytest.raises(ManifestError, match=message):
            load(inputs, output)


def test_without_the_extra_the_error_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "local").mkdir()
    manifest = local_manifest(tmp_path, "local")
    monkeypatch.setitem(__import__("sys").modules, "datasets", None)
    with pytest.raises(ManifestError, match=r"pip install 'spacerun\[datasets\]'"):
        list(iter_rows(manifest))


def test_results_without_a_pin_are_said(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "texts"
    folder.mkdir()
    (folder / "train.jsonl").write_text('{"text": "a"}\n')
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.jsonl").write_text('{"key":"k","status":"ok"}\n')
    rows = list(iter_rows(local_manifest(tmp_path, "texts")))
    assert [r.values for r in rows] == [{"text": "a"}]
    assert "has results but no pinned dataset revision" in caplog.text
    assert (tmp_path / "run" / "dataset.json").exists()  # pinned from now on
