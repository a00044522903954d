"""`Client` with Space ids and `Client.duplicate`, against the local Hub stand-in, with
each Space's host pointing at a real Gradio app on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.apps import RunningApp
from support.hub import HubServer

import jobs
from jobs import Client

TOKEN = "hf_alice_token_0123456789"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with HubServer() as server:
        server.add_user("alice", token=TOKEN)
        yield server


def test_space_id_waits_until_running(hub: HubServer, calculator_app: RunningApp) -> None:
    """A Space id resolves through the Hub; building and starting stages are waited for
    and reported; then calls reach the app."""
    hub.add_space(
        "gradio/calculator", host=calculator_app.url, stages=["BUILDING", "APP_STARTING", "RUNNING"]
    )
    stages: list[str] = []
    with Client("gradio/calculator", hub_endpoint=hub.url, on_space_stage=stages.append) as c:
        assert c.predict(num1=4, operation="add", num2=5) == 9
    assert stages == ["BUILDING", "APP_STARTING", "RUNNING"]


def test_paused_space_fails_at_once(hub: HubServer) -> None:
    """A paused Space raises SpaceNotRunning naming the stage."""
    hub.add_space("alice/paused", stages=["PAUSED"])
    with pytest.raises(jobs.SpaceNotRunning, match="PAUSED") as caught:
        Client("alice/paused", hub_endpoint=hub.url)
    assert caught.value.stage == "PAUSED"


def test_private_space_needs_token(hub: HubServer, calculator_app: RunningApp) -> None:
    """A private Space is found with the owner's token, and not without; the token
    reaches the Hub but not the app's host, which is not a Hugging Face host."""
    hub.add_space("alice/private-calc", private=True, host=calculator_app.url)
    with pytest.raises(jobs.SpaceError) as caught:
        Client("alice/private-calc", hub_endpoint=hub.url)
    assert "token" in str(caught.value)
    with Client("alice/private-calc", hub_endpoint=hub.url, hf_token=TOKEN) as c:
        assert c.predict(1, "add", 1) == 2
    assert any(r.authorization == f"Bearer {TOKEN}" for r in hub.requests)
    assert TOKEN not in repr(c)


def test_duplicate_then_attach(hub: HubServer, calculator_app: RunningApp) -> None:
    """duplicate() makes a private copy with hardware and secrets; running it again
    attaches to the existing copy."""
    hub.add_space("gradio/calculator", host=calculator_app.url)
    hub.duplicate_host = lambda space_id: calculator_app.url
    with Client.duplicate(
        "gradio/calculator",
        hf_token=TOKEN,
        hub_endpoint=hub.url,
        hardware="t4-small",
        secrets={"KEY": "value"},
    ) as c:
        assert c.predict(2, "multiply", 3) == 6
    copy = hub.spaces["alice/calculator"]
    assert copy.private and copy.requested_hardware == "t4-small"
    assert copy.secrets == {"KEY": "value"}
    with Client.duplicate("gradio/calculator", hf_token=TOKEN, hub_endpoint=hub.url) as c:
        assert c.predict(2, "add", 3) == 5
    assert len(hub.calls("POST", "/duplicate")) == 1
