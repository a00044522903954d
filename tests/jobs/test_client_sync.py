"""The blocking `jobs.Client` against real Gradio apps: what the seed documents show."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.apps import RunningApp

import jobs
from jobs import Client, Status


@pytest.fixture(scope="module")
def calc(calculator_app: RunningApp) -> Iterator[Client]:
    with Client(calculator_app.url) as client:
        yield client


def calls(app: RunningApp) -> dict[str, Any]:
    prefix = (app.config or {}).get("api_prefix", "")
    reply = httpx.post(f"{app.url}{prefix}/run/calls", json={"data": []}, timeout=10)
    result: dict[str, Any] = json.loads(reply.json()["data"][0])
    return result


def text_of(message: dict[str, Any]) -> str:
    """A chat message's text (gradio 6 sends content as a list of typed parts)."""
    content = message["content"]
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content)
    return str(content)


def wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


def test_predict_positional_and_keyword(calc: Client) -> None:
    """Positional and keyword arguments give the same answer, as in the seed documents."""
    assert calc.predict(4, "add", 5, api_name="/predict") == 9
    assert calc.predict(num1=4, operation="add", num2=5, api_name="/predict") == 9
    assert calc.predict(num1=4, operation="multiply", num2=5) == 20  # the only endpoint


def test_api_name_without_slash_and_fn_index(calc: Client) -> None:
    """`api_name` works with or without its leading slash, and `fn_index` too."""
    endpoint = calc.endpoint("/predict")
    assert calc.predict(2, "subtract", 5, api_name="predict") == -3
    assert calc.predict(2, "subtract", 5, fn_index=endpoint.fn_index) == -3


def test_url_with_trailing_slash_and_path(calculator_app: RunningApp) -> None:
    """A URL with a trailing slash or an API path still finds the app."""
    for src in (calculator_app.url + "/", calculator_app.url + "/gradio_api/"):
        with Client(src) as client:
            assert client.predict(1, "add", 1) == 2


def test_gr_error_carries_message_and_title(calc: Client, calculator_app: RunningApp) -> None:
    """A gr.Error in the app becomes an AppError with the app's message and title."""
    with pytest.raises(jobs.AppError) as caught:
        calc.predict(1, "divide", 0)
    assert caught.value.app_message == "Cannot divide by zero"
    if int((calculator_app.gradio_version or "6").split(".")[0]) >= 5:  # titles since 5.0
        assert caught.value.title == "Math error"
    assert "Cannot divide by zero" in str(caught.value)


def test_unknown_and_missing_arguments_raise_before_sending(calc: Client) -> None:
    """Bad arguments name the parameter and list the valid ones, without a request."""
    with pytest.raises(jobs.ArgumentError) as caught:
        calc.submit(num1=1, operaton="add", num2=2)
    message = str(caught.value)
    assert "'operaton'" in message and "did you mean 'operation'" in message
    assert "'num1', 'operation', 'num2'" in message
    with pytest.raises(jobs.ArgumentError, match="missing the required parameter 'num1'"):
        calc.submit(operation="add", num2=2)
    with pytest.raises(jobs.ArgumentError, match="takes 3 argument"):
        calc.submit(1, "add", 2, 3)


def test_submit_returns_job_with_result_status_and_callbacks(calc: Client) -> None:
    """submit() returns at once; result() blocks; callbacks get the value; status ends."""
    seen: list[Any] = []
    done = threading.Event()

    def callback(value: Any) -> None:
        seen.append(value)
        done.set()

    job = calc.submit(5, "add", 4, api_name="/predict", result_callbacks=[callback])
    assert job.result(timeout=30) == 9
    assert done.wait(10)
    assert seen == [9]
    assert job.done()
    status = job.status()
    assert status.code is Status.FINISHED and status.success is True
    assert job.outputs() == [9]


def test_generator_outputs_iteration_and_final_result(generator_app: RunningApp) -> None:
    """Iterating a generator job yields each value; result() is the final one."""
    with Client(generator_app.url) as client:
        job = client.submit(4, 0.05, api_name="/count")
        assert list(job) == ["0", "1", "2", "3"]
        assert job.result() == "3"
        assert job.outputs() == ["0", "1", "2", "3"]

        job = client.submit(3, 0.05, api_name="/count")
        while not job.done():
            time.sleep(0.05)
        assert job.outputs() == ["0", "1", "2"]


def test_generator_diffs_rebuild_text_and_chat(generator_app: RunningApp) -> None:
    """Streamed text (append diffs) and a chatbot (nested diffs) rebuild exactly."""
    with Client(generator_app.url) as client:
        job = client.submit("one two three four", api_name="/stream_text")
        assert list(job) == ["one ", "one two ", "one two three ", "one two three four "]
        chat = client.submit("hi there", api_name="/chat")
        history = chat.result()
        assert text_of(history[-1]) == "You said: hi there"
        assert [text_of(h[-1]) for h in chat.outputs()][:2] == ["You", "You said:"]


def test_generator_error_after_yields(generator_app: RunningApp) -> None:
    """A generator that fails after two steps keeps its outputs and raises AppError."""
    with Client(generator_app.url) as client:
        job = client.submit("step", api_name="/fail_after")
        with pytest.raises(jobs.AppError, match="Generator failed after two steps"):
            job.result()
        assert job.outputs() == ["step 1", "step 2"]


def test_progress_and_log_status(generator_app: RunningApp) -> None:
    """Progress and gr.Info reach status() while the job runs."""
    with Client(generator_app.url) as client:
        job = client.submit(8, api_name="/progress")
        seen: set[Status] = set()
        while not job.done():
            status = job.status()
            seen.add(status.code)
            if status.code is Status.PROGRESS:
                assert status.progress_data and status.progress_data[0].desc == "looping"
            time.sleep(0.005)
        assert job.result() == "did 8 steps"
        assert Status.PROGRESS in seen


def test_defaults_filled(defaults_app: RunningApp) -> None:
    """Component initial values and Python None defaults fill omitted parameters."""
    with Client(defaults_app.url) as client:
        received = client.predict(name="Ada", api_name="/describe")
        assert received == {"name": "Ada", "greeting": "Hello", "times": 2, "suffix": None}
        with pytest.raises(jobs.ArgumentError, match="'name'"):
            client.predict(greeting="Hi", api_name="/describe")


def test_several_endpoints(multi_app: RunningApp) -> None:
    """Several named endpoints; a tuple for two outputs; a clear error for a wrong name."""
    with Client(multi_app.url) as client:
        assert client.predict("Ada", api_name="/greet") == "Hello, Ada!"
        assert client.predict(a=2, api_name="/add") == 3
        assert client.predict("two words", api_name="/stats") == (2, 9)
        assert client.predict("x", api_name="/hidden") == "hidden: x"
        with pytest.raises(jobs.EndpointNotFound) as caught:
            client.predict("x", api_name="/gret")
        assert "did you mean '/greet'" in str(caught.value)
        with pytest.raises(jobs.EndpointNotFound, match="say which one"):
            client.predict("x")


def test_view_api_prints_and_returns(multi_app: RunningApp, capsys: Any) -> None:
    """view_api() prints each public endpoint and can return them as a dict."""
    with Client(multi_app.url) as client:
        info = client.view_api(return_format="dict")
        printed = capsys.readouterr().out
    assert isinstance(info, dict)
    named = info["named_endpoints"]
    assert {"/greet", "/add", "/stats"} <= set(named)
    assert "/hidden" not in named and "/private" not in named
    add = named["/add"]["parameters"]
    # gradio_client's shape (the app's /info), not a shape of our own (issue 10).
    assert [
        (p["parameter_name"], p["parameter_has_default"], p["parameter_default"]) for p in add
    ] == [
        ("a", False, None),
        ("b", True, 1),
    ]
    assert 'predict(a, b, api_name="/add")' in printed
    assert "[Number] b: float (not required, defaults to: 1)" in printed


def test_quiet_crash_says_errors_are_hidden(quiet_crash_app: RunningApp) -> None:
    """A crash in an app without verbose errors says so, and gr.Error text still shows."""
    with Client(quiet_crash_app.url) as client:
        with pytest.raises(jobs.AppError, match="does not show error details"):
            client.predict(api_name="/crash")
        with pytest.raises(jobs.AppError, match=r"A gr\.Error is always shown"):
            client.predict(api_name="/app_error")


def test_crash_with_verbose_errors(slow_app: RunningApp) -> None:
    """A plain exception's text is reported when the app shows errors."""
    with (
        Client(slow_app.url) as client,
        pytest.raises(jobs.AppError, match="the app crashed on purpose"),
    ):
        client.predict(api_name="/crash")


def test_queue_rank_queue_full_and_cancel_queued(slow_app: RunningApp) -> None:
    """With one job running and two waiting the queue is full; a queued job reports its
    rank, and cancelling it returns True and it never runs on the server."""
    with Client(slow_app.url) as client:
        running = client.submit(5.0, "running", api_name="/sleep")
        wait_for(lambda: running.status().code is Status.PROCESSING)
        first = client.submit(0.1, "first", api_name="/sleep")
        # Joins travel concurrently: let `first` be queued before `second` is sent.
        wait_for(lambda: first.status().rank is not None)
        second = client.submit(0.1, "second", api_name="/sleep")
        # The app re-estimates waiting jobs as the queue changes; wait for the settled one.
        wait_for(lambda: second.status().rank == 1 and second.status().queue_size == 2)
        assert second.status().code is Status.IN_QUEUE
        with pytest.raises(jobs.QueueFull, match="queue is full"):
            client.predict(0.1, "overflow", api_name="/sleep")
        assert second.cancel() is True
        with pytest.raises(jobs.JobCancelled):
            second.result()
        assert second.status().code is Status.CANCELLED
        assert running.result() == "slept 5.0"
        assert first.result() == "slept 0.1"
        ran = calls(slow_app)
        assert ran["sleep_completed"] == {"running": 1, "first": 1}
        assert "second" not in ran["sleep_started"] and "overflow" not in ran["sleep_started"]


def test_cancel_running_plain_function_returns_false(slow_app: RunningApp) -> None:
    """A running plain function is not cancelled: cancel() is False and it completes."""
    with Client(slow_app.url) as client:
        job = client.submit(0.6, "plain", api_name="/sleep")
        wait_for(lambda: job.status().code is Status.PROCESSING)
        assert job.cancel() is False
        assert job.result() == "slept 0.6"


def test_cancel_running_generator_stops_it(slow_app: RunningApp) -> None:
    """Cancelling a running generator stops it after its current step, on the server."""
    with Client(slow_app.url) as client:
        job = client.submit(20, "gen", api_name="/slow_gen")
        wait_for(lambda: len(job.outputs()) >= 2)
        assert job.cancel() is True
        with pytest.raises(jobs.JobCancelled):
            job.result()
        produced = len(job.outputs())
        time.sleep(1.0)
        ran = calls(slow_app)
        assert ran["slow_gen_steps"]["gen"] <= produced + 1 < 20
        assert "gen" not in ran["slow_gen_completed"]


def test_result_timeout_leaves_job_running(slow_app: RunningApp) -> None:
    """result(timeout=) raises JobTimeout; the job goes on and can still finish."""
    with Client(slow_app.url) as client:
        job = client.submit(0.8, "timeout", api_name="/sleep")
        with pytest.raises(jobs.JobTimeout, match=r"did not finish within 0\.1 s"):
            job.result(timeout=0.1)
        assert job.result(timeout=30) == "slept 0.8"


def test_unreachable_server() -> None:
    """Nothing listening: a ConnectionFailed that names the URL."""
    from support.apps import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(jobs.ConnectionFailed, match="could not reach"):
        Client(url)


def test_server_dies_mid_job(app_factory: Any) -> None:
    """The server process dies while a job runs: the job fails with StreamLost."""
    app = app_factory("slow")
    with Client(app.url) as client:
        job = client.submit(30, "doomed", api_name="/sleep")
        wait_for(lambda: job.status().code is Status.PROCESSING)
        app.kill()
        with pytest.raises(jobs.StreamLost):
            job.result(timeout=60)
        assert isinstance(job.error, jobs.ConnectionFailed) and job.error.transient


def test_unclosed_client_does_not_block_exit(calculator_app: RunningApp) -> None:
    """A script that never closes its Client (as gradio_client users write) still exits."""
    import subprocess
    import sys

    code = (
        f"from jobs import Client\nc = Client({calculator_app.url!r})\n"
        "print(c.predict(1, 'add', 2))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3"


def test_validator_rejection_names_the_parameter(multi_app: RunningApp) -> None:
    """A gradio 6 validator's 422 becomes InputRejected, per parameter."""
    if int((multi_app.gradio_version or "6").split(".")[0]) < 6:
        pytest.skip("validators exist since gradio 6")
    with Client(multi_app.url) as client:
        assert client.predict("Ada", api_name="/validated") == "Hello, Ada!"
        with pytest.raises(jobs.InputRejected) as caught:
            client.predict("Al", api_name="/validated")
    assert caught.value.problems == {"name": "too short: at least 3 characters"}
    assert "name: too short" in str(caught.value)


def test_only_apps_without_a_known_protocol_are_refused() -> None:
    """gradio 3.0 and later is spoken (3.x has no `protocol` key: `ws`); older apps, and
    protocols not known, get an error naming the version and saying what to do."""
    from jobs._protocol.schema import AppSchema

    for version, protocol in (("4.8.0", "sse"), ("4.15.0", "sse_v1"), ("4.21.0", "sse_v2.1")):
        dialect = AppSchema.check_protocol({"version": version, "protocol": protocol}, "x")
        assert dialect.name == protocol
    assert AppSchema.check_protocol({"version": "3.50.2"}, "x").name == "ws"
    refused = (
        ({"version": "2.9.4"}, "upgrade the app's gradio"),
        ({"version": "9.0.0", "protocol": "sse_v9"}, "upgrade spacerun"),
    )
    for config, advice in refused:
        with pytest.raises(jobs.UnsupportedVersion, match=f"gradio {config['version']}") as caught:
            AppSchema.check_protocol(config, "http://app.test")
        assert advice in str(caught.value) and caught.value.version == config["version"]
        assert "use gradio_client for this app" not in str(caught.value)
