"""The seed guide's calls on `tests/old_gradio/apps/seed.py`, made by any client with
gradio_client's API.

The same calls run with `jobs.Client` (imported by the tests) and with the reference
gradio_client in its own venv (`python seed_calls.py URL` prints them as JSON), so the
two can be compared call by call. Each result is made plain: a file by its bytes, an
error by its kind and message, a cancelled job as "cancelled".
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CALL_NAMES = (
    "view_api",
    "positional",
    "keyword",
    "defaults",
    "default_overridden",
    "one_string",
    "file_in_out",
    "generator_result",
    "generator_outputs",
    "session_state",
    "app_error",
    "submit_status",
    "cancel_generator",
    "cancel_queued",
)


def _plain(value: Any) -> Any:
    if isinstance(value, str) and Path(value).is_file() and Path(value).is_absolute():
        return {"file": Path(value).read_text()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _error(exc: BaseException) -> dict[str, str]:
    kind = type(exc).__name__
    if isinstance(exc, concurrent.futures.CancelledError) or kind == "JobCancelled":
        return {"error": "cancelled"}
    # The app's own words (jobs keeps them apart from its own; gradio 4.x quotes them).
    message = str(getattr(exc, "app_message", None) or exc)
    if len(message) > 1 and message[0] == message[-1] == "'":
        message = message[1:-1]
    return {"error": kind, "message": message}


def _wait_status(job: Any, code: str) -> None:
    """Until `job` reports `code` (its status, as both clients name it), at most 30 s."""
    deadline = time.monotonic() + 30
    while str(job.status().code).rsplit(".", 1)[-1] != code and time.monotonic() < deadline:
        time.sleep(0.05)


def _cancel_queued(client: Any) -> Any:
    """The guide's job1 (started: not cancelled) and job2 (queued: cancelled)."""
    first = client.submit(2, api_name="/sleep")
    _wait_status(first, "PROCESSING")
    second = client.submit(2, api_name="/sleep")  # the app runs one /sleep at a time
    _wait_status(second, "IN_QUEUE")
    running, queued = first.cancel(), second.cancel()
    try:
        second.result(timeout=10)
        ended: Any = "finished"
    except BaseException as exc:
        ended = _error(exc)
    try:
        first_result: Any = first.result(timeout=10)
    except BaseException as exc:
        first_result = _error(exc)
    return {
        "cancel_running": running,
        "cancel_queued": queued,
        "queued_ended": ended,
        "running_result": first_result,
    }


def _cancel_generator(client: Any) -> Any:
    job = client.submit(30, api_name="/count")
    for _ in job:
        break  # the generator is running
    cancelled = job.cancel()
    started = time.monotonic()
    try:
        job.result(timeout=20)
        ended: Any = "finished"
    except BaseException as exc:  # what the job ends with is what is compared
        ended = _error(exc)
    return {"cancelled": cancelled, "ended": ended, "fast": time.monotonic() - started < 5}


#: What a user of the guide gets from each call on every version (3.x included).
EXPECTED: dict[str, Any] = {
    "view_api": {
        "/count": ["n"],
        "/count_word": ["word"],
        "/describe": ["name", "greeting", "times"],
        "/echo_file": ["path"],
        "/predict": ["num1", "operation", "num2"],
        "/sleep": ["seconds"],
        "/translate": ["text"],
    },
    "positional": 9,
    "keyword": 9,
    "defaults": "Hello, Ada! Hello, Ada!",
    "default_overridden": "Hi, Ada!",
    "one_string": "Bonjour",
    "file_in_out": {"file": "hello from the seed guide"},
    "generator_result": "0 1 2",
    "generator_outputs": ["0", "0 1", "0 1 2"],
    "session_state": [1, 2, 1],
    "app_error": {"error": "AppError", "message": "Cannot divide by zero!"},
    "submit_status": [9, "FINISHED", True],
    "cancel_generator": {"cancelled": True, "ended": {"error": "cancelled"}, "fast": True},
    "cancel_queued": {
        "cancel_running": False,
        "cancel_queued": True,
        "queued_ended": {"error": "cancelled"},
        "running_result": "slept 2 s",
    },
}


def seed_calls(client: Any, make_client: Callable[[], Any], handle_file: Any) -> dict[str, Any]:
    """Every call, each result (or error) made plain, by call name."""
    sample = Path(tempfile.mkdtemp()) / "sample.txt"
    sample.write_text("hello from the seed guide")

    def state() -> Any:
        first = [client.predict("a", api_name="/count_word") for _ in range(2)]
        other = make_client()
        try:
            return [*first, other.predict("a", api_name="/count_word")]
        finally:
            getattr(other, "close", lambda: None)()

    def api() -> Any:
        info = client.view_api(print_info=False, return_format="dict")
        named = info["named_endpoints"]
        return {
            name: [p.get("parameter_name") or p.get("label") for p in named[name]["parameters"]]
            for name in sorted(named)
        }

    def submit_status() -> Any:
        job = client.submit(5, "add", 4, api_name="/predict")
        value = job.result()
        return [value, str(job.status().code).rsplit(".", 1)[-1], job.done()]

    calls: dict[str, Callable[[], Any]] = {
        "view_api": api,
        "positional": lambda: client.predict(4, "add", 5, api_name="/predict"),
        "keyword": lambda: client.predict(num1=4, operation="add", num2=5, api_name="/predict"),
        "defaults": lambda: client.predict(name="Ada", api_name="/describe"),
        "default_overridden": lambda: client.predict(
            name="Ada", greeting="Hi", times=1, api_name="/describe"
        ),
        "one_string": lambda: client.predict("Hello", api_name="/translate"),
        "file_in_out": lambda: client.predict(handle_file(str(sample)), api_name="/echo_file"),
        "generator_result": lambda: client.submit(3, api_name="/count").result(),
        "generator_outputs": lambda: _outputs(client.submit(3, api_name="/count")),
        "session_state": state,
        "app_error": lambda: client.predict(1, "divide", 0, api_name="/predict"),
        "submit_status": submit_status,
        "cancel_generator": lambda: _cancel_generator(client),
        "cancel_queued": lambda: _cancel_queued(client),
    }
    results: dict[str, Any] = {}
    for name in CALL_NAMES:
        try:
            results[name] = _plain(calls[name]())
        except BaseException as exc:  # the error is the result to compare
            results[name] = _error(exc)
    return results


def _outputs(job: Any) -> Any:
    job.result()
    return list(job.outputs())


if __name__ == "__main__":  # under the reference client's venv
    from gradio_client import Client, handle_file

    url = sys.argv[1]
    main = Client(url, verbose=False)
    found = seed_calls(main, lambda: Client(url, verbose=False), handle_file)
    getattr(main, "close", lambda: None)()
    print(json.dumps(found), flush=True)
    # gradio_client's stream threads can keep an sse_v1/v2 process alive after its calls.
    os._exit(0)
