"""Hugging Face Space support (`jobs._hub.spaces`) against the local stand-in Hub."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants
from support.hub import FREE_SLEEP_SECONDS, HubServer

from jobs._hub.spaces import (
    SpaceRuntime,
    duplicate_space,
    hf_token_from_env,
    is_hf_host,
    looks_like_space_id,
    space_host,
    space_runtime,
    wait_until_running,
)
from jobs.errors import AuthError, ConnectionFailed, SpaceError, SpaceNotRunning

pytestmark = pytest.mark.anyio

ALICE = "hf_alice_secret_token_123"
BOB = "hf_bob_secret_token_456"
READER = "hf_reader_secret_token_789"
APP = "http://127.0.0.1:1/app"  # a Space's host is only reported, never contacted here


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        server.add_user("alice", token=ALICE, orgs=["alice-lab"])
        server.add_user("bob", token=BOB)
        server.add_user("reader", token=READER, role="read")
        yield server


class FakeSleep:
    """An injected `sleep` that returns at once and remembers what was asked."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


# -- host and runtime ----------------------------------------------------------------


async def test_host_is_what_the_hub_api_reports(hub: HubServer) -> None:
    """The URL comes from the API's `host`, not from the id."""
    hub.add_space("bob/echo", host="https://custom-host.hf.space")
    assert await space_host("bob/echo", token=None, endpoint=hub.url) == (
        "https://custom-host.hf.space"
    )


async def test_host_falls_back_to_the_documented_convention(hub: HubServer) -> None:
    """Without a `host` in the answer: lower-cased owner-name.hf.space, `_` and `.` -> `-`."""
    hub.add_space("Owner/My_Space.v2").host = None
    assert await space_host("Owner/My_Space.v2", token=None, endpoint=hub.url) == (
        "https://owner-my-space-v2.hf.space"
    )


async def test_runtime_reports_stage_hardware_and_sleep_time(hub: HubServer) -> None:
    """`space_runtime` reads the Hub's runtime answer into our dataclass."""
    hub.add_space("bob/gpu", hardware="t4-small", requested_hardware="t4-small", sleep_time=600)
    assert await space_runtime("bob/gpu", token=None, endpoint=hub.url) == SpaceRuntime(
        stage="RUNNING", hardware="t4-small", requested_hardware="t4-small", sleep_time=600
    )


# -- waiting -------------------------------------------------------------------------


async def test_waits_through_building_and_starting(hub: HubServer) -> None:
    """Each new stage is reported once; polls back off from 1 s; the host comes back."""
    hub.add_space("bob/echo", host=APP, stages=["BUILDING", "BUILDING", "APP_STARTING", "RUNNING"])
    seen: list[str] = []
    sleep = FakeSleep()
    host = await wait_until_running(
        "bob/echo", token=None, endpoint=hub.url, on_stage=seen.append, sleep=sleep
    )
    assert host == APP
    assert seen == ["BUILDING", "APP_STARTING", "RUNNING"]
    assert sleep.delays == [1.0, 1.5, 2.25]
    assert len(hub.calls("GET", "/runtime")) == 4


@pytest.mark.parametrize("stage", ["RUNNING", "RUNNING_BUILDING"])
async def test_running_space_returns_at_once(hub: HubServer, stage: str) -> None:
    """A Space that serves is used straight away, without sleeping."""
    hub.add_space("bob/echo", host=APP, stages=[stage])
    seen: list[str] = []
    sleep = FakeSleep()
    host = await wait_until_running(
        "bob/echo", token=None, endpoint=hub.url, on_stage=seen.append, sleep=sleep
    )
    assert (host, seen, sleep.delays) == (APP, [stage], [])


@pytest.mark.parametrize(
    ("stage", "advice"),
    [
        ("PAUSED", "settings page"),
        ("RUNTIME_ERROR", "logs"),
        ("BUILD_ERROR", "build logs"),
        ("NO_APP_FILE", "app file"),
        ("CONFIG_ERROR", "configuration"),
        ("DELETING", "deleted"),
    ],
)
async def test_broken_space_fails_at_once_with_its_stage(
    hub: HubServer, stage: str, advice: str
) -> None:
    """Paused or broken: SpaceNotRunning at the first poll, saying the stage and what to do."""
    hub.add_space("bob/echo", stages=[stage, "RUNNING"])
    sleep = FakeSleep()
    with pytest.raises(SpaceNotRunning) as caught:
        await wait_until_running("bob/echo", token=None, endpoint=hub.url, sleep=sleep)
    assert caught.value.stage == stage
    assert stage in str(caught.value) and advice in str(caught.value)
    assert caught.value.space_id == "bob/echo"
    assert not caught.value.transient
    assert sleep.delays == []


async def test_deadline_passed_names_the_last_stage(hub: HubServer) -> None:
    """Still building at the deadline: SpaceNotRunning(stage=BUILDING), worth a retry later."""
    hub.add_space("bob/slow", stages=["BUILDING"])
    sleep = FakeSleep()
    with pytest.raises(SpaceNotRunning) as caught:
        await wait_until_running("bob/slow", token=None, endpoint=hub.url, deadline=60, sleep=sleep)
    assert caught.value.stage == "BUILDING"
    assert caught.value.transient
    assert "60 s" in str(caught.value)
    assert 55 <= sum(sleep.delays) <= 60  # the rest of the minute went to Hub calls
    assert sleep.delays[:3] == [1.0, 1.5, 2.25] and max(sleep.delays) == 10.0


async def test_sleeping_space_without_wake_returns_the_host(hub: HubServer) -> None:
    """SLEEPING: polling the Hub does not wake it, the caller's first request does."""
    hub.add_space("bob/nap", host=APP, stages=["SLEEPING"])
    sleep = FakeSleep()
    assert await wait_until_running("bob/nap", token=None, endpoint=hub.url, sleep=sleep) == APP
    assert sleep.delays == []


async def test_sleeping_space_is_woken_once_then_awaited(hub: HubServer) -> None:
    """With `wake`, it is called once with the host, then the Space is polled until it runs."""
    hub.add_space("bob/nap", host=APP, stages=["SLEEPING", "SLEEPING", "APP_STARTING", "RUNNING"])
    woken: list[str] = []
    seen: list[str] = []

    async def wake(host: str) -> None:
        woken.append(host)

    host = await wait_until_running(
        "bob/nap",
        token=None,
        endpoint=hub.url,
        on_stage=seen.append,
        sleep=FakeSleep(),
        wake=wake,
    )
    assert host == APP
    assert woken == [APP]
    assert seen == ["SLEEPING", "APP_STARTING", "RUNNING"]


# -- missing, private, tokens --------------------------------------------------------


async def test_missing_space_says_it_does_not_exist_or_needs_a_token(hub: HubServer) -> None:
    """Anonymous: the Hub cannot tell missing from private, and the error says both."""
    with pytest.raises(SpaceNotRunning) as caught:
        await wait_until_running("bob/nothing", token=None, endpoint=hub.url, sleep=FakeSleep())
    message = str(caught.value)
    assert "bob/nothing" in message and "does not exist" in message
    assert "private" in message and "HF_TOKEN" in message
    assert caught.value.stage is None and not caught.value.transient


async def test_private_space_needs_the_owners_token(hub: HubServer) -> None:
    """Private: anonymous fails clearly; the owner's token reaches the Hub and works."""
    hub.add_space("alice/private", private=True, host=APP)
    with pytest.raises(SpaceNotRunning, match="private and needs a token"):
        await space_host("alice/private", token=None, endpoint=hub.url)
    assert await space_host("alice/private", token=ALICE, endpoint=hub.url) == APP
    assert [r.authorization for r in hub.requests] == [None, f"Bearer {ALICE}"]


async def test_private_space_with_someone_elses_token(hub: HubServer) -> None:
    """A valid token without access: not found, and the message says the token lacks access."""
    hub.add_space("alice/private", private=True)
    with pytest.raises(SpaceNotRunning, match="no access"):
        await space_runtime("alice/private", token=BOB, endpoint=hub.url)


async def test_bad_token_is_an_auth_error_without_the_token(hub: HubServer) -> None:
    """An invalid token: AuthError saying so, and the token appears nowhere in it."""
    hub.add_space("bob/echo")
    bad = "hf_this_token_is_not_valid_0000"
    with pytest.raises(AuthError) as caught:
        await space_host("bob/echo", token=bad, endpoint=hub.url)
    assert "invalid or expired" in str(caught.value)
    assert bad not in str(caught.value) and bad not in repr(caught.value)
    assert bad not in str(caught.value.url)


async def test_no_token_means_anonymous_even_with_hf_token_set(
    hub: HubServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """token=None sends no Authorization: huggingface_hub must not pick up HF_TOKEN itself."""
    monkeypatch.setenv("HF_TOKEN", ALICE)
    hub.add_space("bob/echo")
    await space_host("bob/echo", token=None, endpoint=hub.url)
    assert [r.authorization for r in hub.requests] == [None]


async def test_unreachable_hub_is_a_connection_failure() -> None:
    """Nothing listening at the endpoint: ConnectionFailed (transient), naming the endpoint."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening
        with pytest.raises(ConnectionFailed) as caught:
            await space_host("bob/echo", token=None, endpoint=endpoint)
    assert endpoint in str(caught.value) and caught.value.transient


# -- duplicate -----------------------------------------------------------------------


async def test_duplicate_creates_a_private_copy_configured_in_one_request(
    hub: HubServer,
) -> None:
    """First run: one duplicate request with visibility, hardware, secrets and sleep time."""
    hub.add_space("bob/gpu-app", hardware="t4-small", requested_hardware="t4-small")
    target = await duplicate_space(
        "bob/gpu-app", token=ALICE, endpoint=hub.url, secrets={"API_KEY": "s3cret"}
    )
    assert target == "alice/gpu-app"
    copy = hub.spaces["alice/gpu-app"]
    assert copy.private and copy.duplicated_from == "bob/gpu-app"
    assert copy.requested_hardware == "t4-small"  # the source's hardware
    assert copy.sleep_time == 5 * 60
    assert copy.secrets == {"API_KEY": "s3cret"}
    assert len(hub.calls("POST", "/duplicate")) == 1
    assert {r.authorization for r in hub.requests} == {f"Bearer {ALICE}"}


async def test_a_new_duplicate_is_awaited_until_it_runs(hub: HubServer) -> None:
    """duplicate then wait: the copy builds, starts, runs, and its own host comes back."""
    hub.add_space("bob/app")
    hub.duplicate_host = lambda space_id: f"http://127.0.0.1:1/{space_id}"
    target = await duplicate_space("bob/app", token=ALICE, endpoint=hub.url)
    seen: list[str] = []
    host = await wait_until_running(
        target, token=ALICE, endpoint=hub.url, on_stage=seen.append, sleep=FakeSleep()
    )
    assert host == "http://127.0.0.1:1/alice/app"
    assert seen == ["BUILDING", "APP_STARTING", "RUNNING"]


async def test_duplicate_second_run_reuses_the_copy(
    hub: HubServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Second run: no second duplicate; missing secrets added, existing values kept."""
    hub.add_space("bob/gpu-app", hardware="t4-small", requested_hardware="t4-small")
    await duplicate_space("bob/gpu-app", token=ALICE, endpoint=hub.url, secrets={"A": "1"})
    with caplog.at_level(logging.WARNING):
        target = await duplicate_space(
            "bob/gpu-app", token=ALICE, endpoint=hub.url, secrets={"A": "new-value-xyz", "B": "2"}
        )
    assert target == "alice/gpu-app"
    assert len(hub.calls("POST", "/duplicate")) == 1
    assert hub.spaces[target].secrets == {"A": "1", "B": "2"}
    assert [r.body["key"] for r in hub.calls("POST", "/secrets")] == ["B"]
    assert "secrets A;" in caplog.text and "new-value-xyz" not in caplog.text
    assert hub.calls("POST", "/hardware") == [] and hub.calls("POST", "/sleeptime") == []


async def test_duplicate_reuse_applies_a_new_hardware_and_sleep_time(hub: HubServer) -> None:
    """Reusing with explicit, different hardware: requested, and the sleep time set."""
    hub.add_space("bob/app")
    await duplicate_space("bob/app", token=ALICE, endpoint=hub.url)
    await duplicate_space(
        "bob/app", token=ALICE, endpoint=hub.url, hardware="a10g-small", sleep_timeout=10
    )
    copy = hub.spaces["alice/app"]
    assert [r.body for r in hub.calls("POST", "/hardware")] == [{"flavor": "a10g-small"}]
    assert (copy.requested_hardware, copy.sleep_time) == ("a10g-small", 600)


async def test_duplicate_on_free_hardware_leaves_sleep_time_alone(hub: HubServer) -> None:
    """cpu-basic: no sleep time is sent (the Hub fixes it at 48 h)."""
    hub.add_space("bob/app")
    await duplicate_space("bob/app", token=ALICE, endpoint=hub.url, private=False)
    (request,) = hub.calls("POST", "/duplicate")
    assert "sleepTimeSeconds" not in request.body
    copy = hub.spaces["alice/app"]
    assert (copy.private, copy.sleep_time) == (False, FREE_SLEEP_SECONDS)


@pytest.mark.parametrize(
    ("to_id", "expected"),
    [("renamed", "alice/renamed"), ("alice-lab/shared", "alice-lab/shared"), (None, "alice/app")],
)
async def test_duplicate_target_name(hub: HubServer, to_id: str | None, expected: str) -> None:
    """to_id without owner goes to the token's user; with an owner (an org) it is kept."""
    hub.add_space("bob/app")
    assert await duplicate_space("bob/app", to_id, token=ALICE, endpoint=hub.url) == expected
    assert expected in hub.spaces


async def test_duplicate_into_someone_elses_namespace_is_refused(hub: HubServer) -> None:
    """The Hub's 403 becomes an AuthError naming the need for write access."""
    hub.add_space("bob/app")
    with pytest.raises(AuthError, match="write access"):
        await duplicate_space("bob/app", "bob/copy", token=ALICE, endpoint=hub.url)


async def test_duplicate_with_a_read_token_is_refused(hub: HubServer) -> None:
    """A read-only token cannot create Spaces: AuthError, without the token."""
    hub.add_space("bob/app")
    with pytest.raises(AuthError) as caught:
        await duplicate_space("bob/app", token=READER, endpoint=hub.url)
    assert "403" in str(caught.value) and READER not in str(caught.value)
    assert "reader/app" not in hub.spaces


async def test_duplicate_without_token_fails_before_any_request(hub: HubServer) -> None:
    """No token: AuthError that says how to give one; the Hub is not asked."""
    with pytest.raises(AuthError, match="HF_TOKEN"):
        await duplicate_space("bob/app", token=None, endpoint=hub.url)
    assert hub.requests == []


async def test_duplicate_of_a_missing_source(hub: HubServer) -> None:
    """Source not found (or private): SpaceNotRunning naming the source, nothing created."""
    with pytest.raises(SpaceNotRunning, match="bob/ghost"):
        await duplicate_space("bob/ghost", token=ALICE, endpoint=hub.url)
    assert hub.calls("POST") == []


async def test_duplicate_with_a_bad_token(hub: HubServer) -> None:
    """Invalid token: AuthError, and the token is not in the message."""
    hub.add_space("bob/app")
    bad = "hf_nope_nope_nope_nope"
    with pytest.raises(AuthError) as caught:
        await duplicate_space("bob/app", token=bad, endpoint=hub.url)
    assert bad not in str(caught.value)


async def test_invalid_space_id_is_refused_before_any_request(hub: HubServer) -> None:
    """A malformed to_id is a SpaceError; nothing is sent."""
    with pytest.raises(SpaceError, match="not a Space name"):
        await duplicate_space("bob/app", "a/b/c", token=ALICE, endpoint=hub.url)
    assert hub.requests == []


# -- pure helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://huggingface.co/api/spaces/x/y", True),
        ("https://abidlabs-whisper.hf.space/config", True),
        ("https://ABIDLABS-WHISPER.HF.SPACE/", True),
        ("http://abidlabs-whisper.hf.space", False),
        ("https://evil-hf.space", False),
        ("https://hf.space", False),
        ("https://.hf.space", False),
        ("https://a.b.hf.space", False),
        ("https://hf.space.evil.com", False),
        ("https://huggingface.co.evil.com", False),
        ("https://evilhuggingface.co", False),
        ("https://huggingface.co@evil.com/", False),
        ("https://x.hf.space:8443/", False),
        ("http://127.0.0.1:7860", False),
        ("not a url", False),
    ],
)
def test_is_hf_host(url: str, expected: bool) -> None:
    """Only exact HF host names over https may receive a token."""
    assert is_hf_host(url) is expected


@pytest.mark.parametrize(
    ("src", "expected"),
    [
        ("abidlabs/whisper", True),
        ("MoraxCheng/Transeption_iGEM_BASISCHINA_2025", True),
        ("owner/name.v2", True),
        ("https://abidlabs-whisper.hf.space", False),
        ("http://127.0.0.1:7860", False),
        ("127.0.0.1/app", False),
        ("a/b/c", False),
        ("whisper", False),
        ("./apps/demo.py", False),
    ],
)
def test_looks_like_space_id(src: str, expected: bool) -> None:
    """owner/name and nothing else."""
    assert looks_like_space_id(src) is expected


def test_token_order_explicit_env_saved_login(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """explicit > HF_TOKEN > huggingface_hub's saved login > None."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    saved = tmp_path / "token"
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(saved))
    assert hf_token_from_env() is None
    saved.write_text("hf_saved\n")
    assert hf_token_from_env() == "hf_saved"
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert hf_token_from_env() == "hf_env"
    assert hf_token_from_env("hf_explicit") == "hf_explicit"
