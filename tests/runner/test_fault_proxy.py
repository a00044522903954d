"""The fault proxy in front of a real Gradio app, driven with plain httpx."""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr
import httpx
import pytest
from support.fault_proxy import (
    CutStream,
    Delay,
    Disconnect,
    FaultProxy,
    Respond,
    Rule,
    Stall,
)

# A gated generator lets a test hold a job mid-run: it yields once, then waits
# for the test to open its gate, so "before the job ends" is an event, not a race.
GATES: dict[str, threading.Event] = {}


def gated(token: str) -> Iterator[str]:
    yield f"{token} started"
    GATES[token].wait(timeout=30)
    yield f"{token} done"


def echo(text: str) -> str:
    return text


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _launch(demo: gr.Blocks, **kwargs: Any) -> Iterator[str]:
    port = _free_port()
    demo.queue().launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **kwargs
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app_url() -> Iterator[str]:
    with gr.Blocks() as demo:
        token, out = gr.Textbox(), gr.Textbox()
        gr.Button().click(gated, token, out, api_name="gated")
        gr.Button().click(echo, token, out, api_name="echo")
    yield from _launch(demo)


@pytest.fixture(scope="module")
def auth_app_url() -> Iterator[str]:
    with gr.Blocks() as demo:
        text = gr.Textbox()
        text.submit(echo, text, text, api_name="echo")
    yield from _launch(demo, auth=("user", "secret"))


@pytest.fixture(scope="module")
def fn_index(app_url: str) -> dict[str, int]:
    config = httpx.get(f"{app_url}/config").json()
    return {dep["api_name"]: dep["id"] for dep in config["dependencies"]}


@pytest.fixture
def proxy(app_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(app_url) as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


@pytest.fixture
def gate() -> Iterator[tuple[str, threading.Event]]:
    token = uuid.uuid4().hex
    GATES[token] = event = threading.Event()
    yield token, event
    event.set()  # never leave a job thread waiting in the app
    del GATES[token]


def join(client: httpx.Client, base: str, fn: int, data: list[Any], session: str) -> httpx.Response:
    body = {"data": data, "fn_index": fn, "session_hash": session}
    return client.post(f"{base}/gradio_api/queue/join", json=body)


def messages(response: httpx.Response) -> Iterator[dict[str, Any]]:
    for line in response.iter_lines():
        if line.startswith("data:"):
            yield json.loads(line[5:])


def test_config_passes_through_with_the_proxy_as_root(
    proxy: FaultProxy, client: httpx.Client, app_url: str
) -> None:
    """/config comes through unchanged, and Gradio builds its URLs for the proxy."""
    direct = client.get(f"{app_url}/config").json()
    proxied = client.get(f"{proxy.url}/config")

    assert proxied.status_code == 200
    assert proxied.json()["dependencies"] == direct["dependencies"]
    assert proxied.json()["root"] == proxy.url
    assert proxy.counts("^/config$", 200, method="GET") == 1


def test_event_stream_is_forwarded_as_it_arrives(
    proxy: FaultProxy, client: httpx.Client, fn_index: dict[str, int], gate: Any
) -> None:
    """A job's first output reaches the client while the job is still running."""
    token, release = gate
    session = uuid.uuid4().hex
    assert join(client, proxy.url, fn_index["gated"], [token], session).status_code == 200

    url = f"{proxy.url}/gradio_api/queue/data?session_hash={session}"
    with client.stream("GET", url) as response:
        stream = messages(response)
        first = next(m for m in stream if m["msg"] == "process_generating")
        assert first["output"]["data"] == [f"{token} started"]
        assert not release.is_set()  # the job is blocked on its gate: nothing buffered
        release.set()
        rest = [m["msg"] for m in stream]
    assert rest[-2:] == ["process_completed", "close_stream"]


def test_next_three_joins_are_rate_limited(
    proxy: FaultProxy, client: httpx.Client, fn_index: dict[str, int]
) -> None:
    """Three 429s with Retry-After, never reaching the app, then joins go through."""
    rule = proxy.add_rule(
        Rule(
            path="queue/join",
            method="POST",
            times=3,
            action=Respond.too_many_requests(retry_after=2),
        )
    )
    session = uuid.uuid4().hex
    replies = [join(client, proxy.url, fn_index["echo"], ["hi"], session) for _ in range(4)]

    assert [r.status_code for r in replies] == [429, 429, 429, 200]
    assert {r.headers["retry-after"] for r in replies[:3]} == {"2"}
    assert "retry" in replies[0].json()["error"]
    assert "event_id" in replies[3].json()
    assert proxy.hits(rule) == 3
    assert proxy.counts("queue/join", status=429) == 3
    assert proxy.counts("queue/join", status=200) == 1
    # Only the fourth join was submitted: exactly one job completes on the stream.
    url = f"{proxy.url}/gradio_api/queue/data?session_hash={session}"
    with client.stream("GET", url) as response:
        done = [m for m in messages(response) if m["msg"] == "process_completed"]
    assert [m["output"]["data"] for m in done] == [["hi"]]


def test_a_rule_with_probability_repeats_with_its_seed(
    proxy: FaultProxy, client: httpx.Client
) -> None:
    """The same seed injects 503s into the same requests; others pass."""

    def statuses() -> list[int]:
        proxy.clear_rules()
        proxy.add_rule(Rule(path="^/config$", action=Respond.error(503), probability=0.5, seed=7))
        return [client.get(f"{proxy.url}/config").status_code for _ in range(20)]

    first, second = statuses(), statuses()
    assert first == second
    assert set(first) == {200, 503}
    assert proxy.counts("config", status=503) == 2 * first.count(503)


def test_stream_cut_after_two_messages(
    proxy: FaultProxy, client: httpx.Client, fn_index: dict[str, int], gate: Any
) -> None:
    """The client gets exactly two messages, then a broken chunked body."""
    token, _ = gate
    proxy.add_rule(Rule(path="queue/data", times=1, action=CutStream(after_messages=2)))
    session = uuid.uuid4().hex
    join(client, proxy.url, fn_index["gated"], [token], session)

    received: list[str] = []
    url = f"{proxy.url}/gradio_api/queue/data?session_hash={session}"
    with pytest.raises(httpx.RemoteProtocolError), client.stream("GET", url) as response:
        received.extend(m["msg"] for m in messages(response))
    assert received == ["estimation", "process_starts"]
    assert proxy.counts("queue/data", status=200) == 1


def test_response_cut_after_bytes(proxy: FaultProxy, client: httpx.Client) -> None:
    """A fixed-length body cut after 100 bytes: the client sees it incomplete."""
    proxy.add_rule(Rule(path="^/config$", times=1, action=CutStream(after_bytes=100)))
    body = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream(
            "GET", f"{proxy.url}/config", headers={"accept-encoding": "identity"}
        ) as response,
    ):
        for chunk in response.iter_raw():
            body += chunk
    assert len(body) == 100
    assert client.get(f"{proxy.url}/config").status_code == 200  # times=1: healed


def test_stalled_stream_resumes_on_release(
    proxy: FaultProxy, client: httpx.Client, fn_index: dict[str, int]
) -> None:
    """After one message nothing flows, connection open; release delivers the rest."""
    proxy.add_rule(Rule(path="queue/data", times=1, action=Stall(after_messages=1)))
    session = uuid.uuid4().hex
    join(client, proxy.url, fn_index["echo"], ["hello"], session)

    inbox: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def read() -> None:
        url = f"{proxy.url}/gradio_api/queue/data?session_hash={session}"
        with client.stream("GET", url) as response:
            for message in messages(response):
                inbox.put(message)
        inbox.put(None)

    reader = threading.Thread(target=read)
    reader.start()
    first = inbox.get(timeout=10)
    assert first is not None and first["msg"] == "estimation"
    with pytest.raises(queue.Empty):  # the echo finishes in ms; the proxy holds it
        inbox.get(timeout=0.5)
    proxy.release_stalls()
    rest = [m["msg"] for m in iter(lambda: inbox.get(timeout=10), None)]
    reader.join(timeout=10)
    assert rest[-2:] == ["process_completed", "close_stream"]


def test_delay_holds_the_response(proxy: FaultProxy, client: httpx.Client) -> None:
    """A delayed request answers normally, no sooner than the delay."""
    proxy.add_rule(Rule(path="^/config$", times=1, action=Delay(seconds=0.5)))
    started = time.monotonic()
    assert client.get(f"{proxy.url}/config").status_code == 200
    assert time.monotonic() - started >= 0.5


def test_delay_after_upstream_runs_the_job_the_client_gave_up_on(
    proxy: FaultProxy, client: httpx.Client, fn_index: dict[str, int]
) -> None:
    """The join times out on the client, yet the app got it: the job completes."""
    proxy.add_rule(Rule(path="queue/join", times=1, action=Delay(seconds=30, after_upstream=True)))
    session = uuid.uuid4().hex
    with pytest.raises(httpx.ReadTimeout):
        client.post(
            f"{proxy.url}/gradio_api/queue/join",
            json={"data": ["late"], "fn_index": fn_index["echo"], "session_hash": session},
            timeout=httpx.Timeout(10, read=0.5),
        )
    url = f"{proxy.url}/gradio_api/queue/data?session_hash={session}"
    with client.stream("GET", url) as response:
        done = [m for m in messages(response) if m["msg"] == "process_completed"]
    assert [m["output"]["data"] for m in done] == [["late"]]


def test_disconnect_without_response(proxy: FaultProxy, client: httpx.Client) -> None:
    """The client sees the server hang up; the proxy records no status."""
    proxy.add_rule(Rule(path="^/config$", times=1, action=Disconnect()))
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{proxy.url}/config")
    assert proxy.counts("^/config$") == 1
    assert proxy.counts("^/config$", status=200) == 0
    assert client.get(f"{proxy.url}/config").status_code == 200


def test_refused_connections_then_accepted_again(proxy: FaultProxy, client: httpx.Client) -> None:
    """New and pooled connections fail while refusing; both work afterwards."""
    assert client.get(f"{proxy.url}/config").status_code == 200  # a pooled connection
    proxy.refuse_connections()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{proxy.url}/config")
    with pytest.raises(httpx.TransportError):
        client.get(f"{proxy.url}/config")

    proxy.refuse_connections(False)
    assert httpx.get(f"{proxy.url}/config").status_code == 200
    assert client.get(f"{proxy.url}/config").status_code == 200
    assert proxy.counts("^/config$", 200) == 3


def test_keep_alive_reuses_one_connection(proxy: FaultProxy, client: httpx.Client) -> None:
    """Sequential requests of one client travel over one proxy connection."""
    for _ in range(5):
        assert client.get(f"{proxy.url}/gradio_api/info").status_code == 200
    assert proxy.connections_accepted == 1
    assert {e.connection for e in proxy.last_requests()} == {1}


def test_upload_and_download_pass_through(proxy: FaultProxy, client: httpx.Client) -> None:
    """A multipart upload reaches the app and the file downloads through the proxy."""
    content = b"spacerun \x00\xff" * 1000
    uploaded = client.post(f"{proxy.url}/gradio_api/upload", files={"files": ("data.bin", content)})
    assert uploaded.status_code == 200
    [path] = uploaded.json()
    downloaded = client.get(f"{proxy.url}/gradio_api/file={path}")
    assert downloaded.content == content


def test_cookies_pass_both_ways(auth_app_url: str) -> None:
    """A login through the proxy sets the session cookie that then authorises."""
    with FaultProxy(auth_app_url) as proxy, httpx.Client(base_url=proxy.url) as http:
        assert http.get("/config").status_code == 401
        login = http.post("/login", data={"username": "user", "password": "secret"})
        assert login.status_code == 200
        assert any(name.startswith("access-token") for name in http.cookies)
        assert http.get("/config").status_code == 200


def test_upstream_down_is_a_502(client: httpx.Client) -> None:
    """With nothing listening upstream the proxy answers 502 itself."""
    with FaultProxy(f"http://127.0.0.1:{_free_port()}") as proxy:
        assert client.get(f"{proxy.url}/config").status_code == 502
        assert proxy.counts(status=502) == 1


def test_last_requests_and_wait_for(proxy: FaultProxy, client: httpx.Client) -> None:
    """Request lines are recorded in order, with the fault that was applied."""
    proxy.add_rule(Rule(path="info", times=1, action=Respond.error(500)))
    client.get(f"{proxy.url}/gradio_api/info")
    client.get(f"{proxy.url}/config?x=1")
    assert proxy.wait_for("^/config$", 1, timeout=1) == 1
    lines = [str(e) for e in proxy.last_requests(2)]
    assert lines == [
        "GET /gradio_api/info -> 500 [Respond]",
        "GET /config?x=1 -> 200",
    ]
    with pytest.raises(TimeoutError):
        proxy.wait_for("queue/join", 1, timeout=0.1)


@pytest.mark.anyio
async def test_every_join_fails_until_the_rule_is_removed(
    proxy: FaultProxy, fn_index: dict[str, int]
) -> None:
    """An unlimited rule answers 503 to every join (async client) until removed."""
    rule = proxy.add_rule(Rule(path="queue/join", method="POST", action=Respond.error(503)))
    body = {"data": ["x"], "fn_index": fn_index["echo"], "session_hash": uuid.uuid4().hex}
    url = f"{proxy.url}/gradio_api/queue/join"
    async with httpx.AsyncClient(timeout=10) as http:
        failed = [(await http.post(url, json=body)).status_code for _ in range(5)]
        proxy.remove_rule(rule)
        assert (await http.post(url, json=body)).status_code == 200
    assert failed == [503] * 5
    assert proxy.hits(rule) == 0  # removed rules are forgotten
    assert proxy.counts("queue/join", 503, method="POST") == 5
