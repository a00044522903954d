"""`runner.push` against the Hub stand-in: a key is pushed at most once, as its latest
record (an error retried into ok replaces it); a push whose commit landed but whose
answer was lost, or that the Hub refused, is settled by the next push; media outputs
become typed columns; the card holds no secret."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from huggingface_hub.errors import HfHubHTTPError
from support.hub import HubServer
from support.speech_dataset import SPEECH

from runner.push import push_results
from runner.store import RecordStatus, ResultRecord, RunFolder, write_manifest

TOKEN = "hf_alice_push_token_0123456789"
REPO = "alice/results"


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.add_user("alice", token=TOKEN)
        yield server


def record(key: str, status: RecordStatus, **fields: Any) -> ResultRecord:
    if status is RecordStatus.OK:
        fields.setdefault("outputs", {"text": f"text of {key}"})
    else:
        fields.setdefault("error_type", "AppError")
        fields.setdefault("error_message", f"{key} failed")
    return ResultRecord(key=key, row=int(key[1:]), status=status, inputs={"n": key}, **fields)


def append(run: Path, *records: ResultRecord) -> None:
    RunFolder(root=run).ensure()
    with open(run / "results.jsonl", "ab") as handle:
        for one in records:
            handle.write(one.to_line())


def pushed(hub: HubServer) -> list[dict[str, Any]]:
    _, files = hub.datasets[REPO].files_at("main")
    rows: list[dict[str, Any]] = []
    for name in sorted(f for f in files if f.endswith(".parquet")):
        rows += pq.read_table(io.BytesIO(files[name])).to_pylist()
    return rows


def push(hub: HubServer, run: Path) -> Any:
    return push_results(run, REPO, token=TOKEN, endpoint=hub.url)


def test_an_error_retried_into_ok_replaces_its_row(hub: HubServer, tmp_path: Path) -> None:
    append(tmp_path, record("k0", RecordStatus.OK), record("k1", RecordStatus.ERROR))
    first = push(hub, tmp_path)
    assert (first.rows_added, first.rows_replaced) == (2, 0)
    assert {r["spacerun_key"]: r["status"] for r in pushed(hub)} == {"k0": "ok", "k1": "error"}
    assert pushed(hub)[1]["error"] == "AppError: k1 failed"

    append(tmp_path, record("k1", RecordStatus.OK), record("k2", RecordStatus.OK))
    second = push(hub, tmp_path)
    assert (second.rows_added, second.rows_replaced) == (1, 1)
    rows = pushed(hub)
    assert sorted(r["spacerun_key"] for r in rows) == ["k0", "k1", "k2"]
    assert {r["spacerun_key"]: r["text"] for r in rows}["k1"] == "text of k1"
    assert push(hub, tmp_path).commit is None  # nothing new: no commit


@pytest.mark.parametrize("fault", ["reply_lost", "refused"])
def test_an_interrupted_push_is_finished_by_the_next(
    hub: HubServer, tmp_path: Path, fault: str
) -> None:
    append(tmp_path, record("k0", RecordStatus.OK))
    push(hub, tmp_path)
    append(tmp_path, record("k1", RecordStatus.OK), record("k2", RecordStatus.ERROR))
    hub.dataset_routes.commit_faults.append(fault)
    with pytest.raises(HfHubHTTPError):
        push(hub, tmp_path)
    landed = len(pushed(hub)) == 3
    assert landed is (fault == "reply_lost")

    append(tmp_path, record("k3", RecordStatus.OK))
    report = push(hub, tmp_path)
    assert report.finished_earlier is landed
    keys = [r["spacerun_key"] for r in pushed(hub)]
    assert sorted(keys) == ["k0", "k1", "k2", "k3"]  # each once, whichever way it went


def test_audio_outputs_are_pushed_as_an_audio_column(hub: HubServer, tmp_path: Path) -> None:
    wav = next(SPEECH.glob("*.wav"))
    out = tmp_path / "files" / "k0" / "speech.wav"
    out.parent.mkdir(parents=True)
    out.write_bytes(wav.read_bytes())
    append(tmp_path, record("k0", RecordStatus.OK, outputs={"speech": "files/k0/speech.wav"}))
    push(hub, tmp_path)
    _, files = hub.datasets[REPO].files_at("main")
    table = pq.read_table(io.BytesIO(files["data/train-00000.parquet"]))
    assert b'"speech": {"_type": "Audio"}' in table.schema.metadata[b"huggingface"]
    cell = table.to_pylist()[0]["speech"]
    assert cell == {"bytes": wav.read_bytes(), "path": "speech.wav"}


def test_the_card_holds_no_secret(hub: HubServer, tmp_path: Path) -> None:
    write_manifest(tmp_path, {"name": "secret-run", "app": {"hf_token": "${HF_TOKEN}"}})
    append(tmp_path, record("k0", RecordStatus.OK, outputs={"text": "uses sk-live-42"}))
    push_results(tmp_path, REPO, token=TOKEN, endpoint=hub.url, secret_values=["sk-live-42"])
    _, files = hub.datasets[REPO].files_at("main")
    card = files["README.md"].decode()
    assert "secret-run" in card and "${HF_TOKEN}" in card and "1 ok" in card
    assert TOKEN not in card and "sk-live-42" not in card
    assert hub.datasets[REPO].private


def test_a_push_without_the_rights_is_refused(hub: HubServer, tmp_path: Path) -> None:
    hub.add_user("eve", token="hf_eve", role="read")
    append(tmp_path, record("k0", RecordStatus.OK))
    with pytest.raises(HfHubHTTPError) as refused:
        push_results(tmp_path, REPO, token="hf_eve", endpoint=hub.url)
    assert refused.value.response.status_code == 403
    assert not (tmp_path / "push" / "state.json").exists()
