"""`duplicate:` replicas in a manifest: N distinct copies made (or reused) in the token
owner's account, with the hardware and sleep time asked for, then run against."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support.apps import RunningApp
from support.hub import HubServer

from runner.run import RunOptions, run

TOKEN = "hf_alice_token_duplicates"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, calculator_app: RunningApp) -> Iterator[HubServer]:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with HubServer() as server:
        server.add_user("alice", token=TOKEN)
        server.add_space("gradio/calculator", host=calculator_app.url)
        server.duplicate_host = lambda space_id: calculator_app.url
        yield server


def test_duplicates_are_made_once_and_configured(hub: HubServer, tmp_path: Path) -> None:
    """Two copies named calculator and calculator-2, t4-small, sleeping after 1 h; a
    second run reuses them."""
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(
        "app:\n"
        "  endpoint: /predict\n"
        "  hf_token: ${HF_TOKEN}\n"
        "  replicas:\n"
        "    - duplicate: gradio/calculator\n"
        "      count: 2\n"
        "      hardware: t4-small\n"
        "      sleep_timeout: 1h\n"
        "inputs:\n"
        "  rows: [{num1: 1, operation: add, num2: 2}, {num1: 2, operation: add, num2: 2}]\n"
    )
    options = RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False)
    summary = run(manifest, options)
    assert summary.exit_status == 0
    copies = {name: hub.spaces[name] for name in ("alice/calculator", "alice/calculator-2")}
    for space in copies.values():
        assert space.private and space.requested_hardware == "t4-small"
        assert space.sleep_time == 3600  # seconds on the Hub: the manifest's 1h
    assert {r.name for r in summary.replicas} == {
        "duplicate:calculator",
        "duplicate:calculator-2",
    }

    run(
        manifest,
        RunOptions(hub_endpoint=hub.url, progress="quiet", handle_signals=False, restart=True),
    )
    assert len(hub.calls("POST", "/duplicate")) == 2
