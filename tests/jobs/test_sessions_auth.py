"""Session state, heartbeats, password auth and where the HF token goes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
from support.apps import RunningApp
from support.fault_proxy import FaultProxy

import jobs
from jobs import AsyncClient, Client

TOKEN = "hf_secret_token_value_123"


def test_state_carries_across_calls_and_reset(counter_app: RunningApp) -> None:
    """The seed documents' word counter: repeated calls see the state; reset forgets it."""
    with Client(counter_app.url) as client:
        assert client.predict("apple", api_name="/count") == 0
        assert client.predict("apple", api_name="/count") == 1
        assert client.predict("pear", api_name="/count") == 0
        assert client.predict("apple", api_name="/count") == 2
        client.reset_session()
        assert client.predict("apple", api_name="/count") == 0


def test_state_is_hidden_from_the_api(counter_app: RunningApp) -> None:
    """State slots are neither parameters nor returns."""
    with Client(counter_app.url) as client:
        endpoint = client.endpoint("/count")
        assert [p.name for p in endpoint.parameters] == ["word"]
        assert len(endpoint.returns) == 1


def test_new_session_views_are_independent(counter_app: RunningApp) -> None:
    """new_session() gives independent state while sharing the connection and schema."""

    async def main() -> None:
        async with AsyncClient(counter_app.url) as client:
            one, two = client.new_session(), client.new_session()
            assert one.schema is client.schema
            assert await one.predict(step=5, api_name="/add") == 5
            assert await one.predict(step=5, api_name="/add") == 10
            assert await two.predict(step=1, api_name="/add") == 1
            assert await client.predict(step=2, api_name="/add") == 2

    anyio.run(main)


def test_heartbeat_held_while_session_in_use(counter_app: RunningApp) -> None:
    """For an app that asks for it, the session's heartbeat is open while in use."""
    with FaultProxy(counter_app.url) as proxy, Client(proxy.url) as client:
        assert client.predict("x", api_name="/count") == 0
        proxy.wait_for("heartbeat", timeout=10)
        hashes = {
            ex.path.rsplit("/", 1)[-1] for ex in proxy.last_requests(50) if "heartbeat" in ex.path
        }
        assert client.session_hash in hashes


def test_password_auth(auth_app: RunningApp) -> None:
    """auth=(user, password) logs in; a wrong password or none raises AuthError."""
    with Client(auth_app.url, auth=("alice", "wonderland")) as client:
        assert client.predict("hi", api_name="/echo") == "hi"
    with pytest.raises(jobs.AuthError, match="wrong user name or password") as caught:
        Client(auth_app.url, auth=("alice", "nope"))
    assert "nope" not in str(caught.value)
    with pytest.raises(jobs.AuthError, match="needs a login"):
        Client(auth_app.url)


class _Recorder:
    """Records each request's headers on their way to a real app."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    async def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)


def _token_seen(recorder: _Recorder) -> list[str]:
    return [
        str(r.url)
        for r in recorder.requests
        if TOKEN in " ".join(f"{k}: {v}" for k, v in r.headers.items())
    ]


def test_token_never_sent_to_other_hosts(calculator_app: RunningApp, caplog: Any) -> None:
    """An hf_token is not sent to an app that is not on a Hugging Face host, and never
    appears in a repr or a log line."""
    caplog.set_level(logging.DEBUG)

    async def main() -> None:
        recorder = _Recorder()
        async with (
            httpx.AsyncClient(event_hooks={"request": [recorder]}) as http,
            AsyncClient(calculator_app.url, hf_token=TOKEN, http=http) as client,
        ):
            assert await client.predict(1, "add", 2) == 3
            assert TOKEN not in repr(client)
        assert recorder.requests and not _token_seen(recorder)

    anyio.run(main)
    assert TOKEN not in caplog.text


def test_token_sent_to_named_hosts_under_configured_header(calculator_app: RunningApp) -> None:
    """Where the host is allowed, every request carries the token, under the header
    chosen (X-HF-Authorization by default)."""

    async def main(header: str) -> None:
        recorder = _Recorder()
        async with (
            httpx.AsyncClient(event_hooks={"request": [recorder]}) as http,
            AsyncClient(
                calculator_app.url,
                hf_token=TOKEN,
                http=http,
                token_hosts=["127.0.0.1"],
                token_header=header,
            ) as client,
        ):
            assert await client.predict(1, "add", 2) == 3
        assert all(r.headers.get(header) == f"Bearer {TOKEN}" for r in recorder.requests)

    anyio.run(main, "X-HF-Authorization")
    anyio.run(main, "Authorization")


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
    yield


def test_token_does_not_follow_a_redirect_to_another_host(calculator_app: RunningApp) -> None:
    """A token host that redirects elsewhere does not hand the token over: the hop to
    the other host arrives without it (httpx itself strips only `Authorization`)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from support.fault_proxy import Respond, Rule

    seen: list[dict[str, str]] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        elsewhere = f"http://localhost:{server.server_address[1]}/config"
        with FaultProxy(calculator_app.url) as proxy:
            proxy.add_rule(
                Rule(path="config", action=Respond(status=302, headers={"Location": elsewhere}))
            )
            with pytest.raises(jobs.JobsError):
                Client(proxy.url, hf_token=TOKEN, token_hosts=["127.0.0.1"])
            assert proxy.counts("config", status=302) >= 1
    finally:
        server.shutdown()
    assert seen, "the redirect was not followed"
    assert all(TOKEN not in " ".join(h.values()) for h in seen)


def test_reload_after_a_restart_logs_in_again(auth_app: RunningApp) -> None:
    """An app restarted at its address forgets the login: `reload()` logs in again and
    reads the same API, which keeps its object (what is keyed on it stays)."""

    async def main() -> None:
        async with jobs.AsyncClient(auth_app.url, auth=("alice", "wonderland")) as client:
            before = client.schema
            await anyio.to_thread.run_sync(auth_app.restart)
            assert await client.reload() is before
            assert await client.predict("again", api_name="/echo") == "again"

    anyio.run(main)
