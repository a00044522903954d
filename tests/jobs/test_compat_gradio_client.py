"""The same calls through gradio_client and `jobs.Client`, side by side, on real apps.

`jobs.Client` is meant as a drop-in for `gradio_client.Client`: a program that changes
its import should see the same values (files compared by content, since each client
downloads into its own folder), errors of the same builtin kinds, the same
`view_api(return_format="dict")` and a `Job` that works with `concurrent.futures`.
gradio_client comes with the `gradio` test dependency. Apps: the repository's test apps
and `tests/apps/demos.py` (small apps in the style of gradio's own demos).
"""

from __future__ import annotations

import builtins
import concurrent.futures
import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio_client
import httpx
import pytest
from support.apps import RunningApp

import jobs

HERE = Path(__file__).resolve().parent
TEXT_FILE = HERE.parent / "data" / "compat_note.txt"


Pair = tuple[gradio_client.Client, jobs.Client]


def _pair(url: str, tmp: Path) -> Pair:
    theirs = gradio_client.Client(
        url, verbose=False, download_files=str(tmp / "theirs"), analytics_enabled=False
    )
    ours = jobs.Client(url, verbose=False, download_files=str(tmp / "ours"))
    return theirs, ours


@pytest.fixture
def clients(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Pair]:
    """Both clients on the app named by the test's `app` parameter (a fixture name)."""
    app: RunningApp = request.getfixturevalue(request.param)
    theirs, ours = _pair(app.url, tmp_path)
    try:
        yield theirs, ours
    finally:
        theirs.close()
        ours.close()


def _files_by_content(value: Any) -> Any:
    """Local paths of downloaded files become ("file", name, sha256 of the content)."""
    if isinstance(value, str) and os.path.isabs(value) and os.path.isfile(value):
        digest = hashlib.sha256(Path(value).read_bytes()).hexdigest()
        return ("file", os.path.basename(value), digest)
    if isinstance(value, dict):
        return {k: _files_by_content(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_files_by_content(v) for v in value)
    return value


def _outcome(client: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    try:
        return ("value", _files_by_content(client.predict(*args, **kwargs)))
    except Exception as exc:  # the kind is compared below
        return ("error", exc)


def _builtin_kind(exc: BaseException) -> type[BaseException]:
    """The nearest builtin (or concurrent.futures) class a program could catch."""
    for cls in type(exc).__mro__:
        if cls.__module__ in ("builtins", "concurrent.futures._base"):
            return cls
    return Exception


# (app fixture, args, kwargs): one predict each, through both clients.
CALLS: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
    ("calculator_app", (4, "add", 5), {"api_name": "/predict"}),
    ("calculator_app", (), {"num1": 6, "operation": "divide", "num2": 3}),
    ("calculator_app", (1, "divide", 0), {"api_name": "/predict"}),  # gr.Error
    ("calculator_app", (1, "add"), {"api_name": "/predict"}),  # missing argument
    ("calculator_app", (1, "add", 2), {"api_name": "/predict", "num4": 2}),  # unknown name
    ("calculator_app", (1, "add", 2), {"api_name": "/nope"}),  # unknown endpoint
    ("multi_app", ("Ada",), {"api_name": "/greet"}),
    ("multi_app", (2,), {"api_name": "/add"}),  # b's default
    ("multi_app", ("two words",), {"api_name": "/stats"}),
    ("multi_app", ("x",), {"api_name": "/upper_1"}),
    ("multi_app", ("x",), {"api_name": "/hidden"}),  # undocumented: callable
    ("defaults_app", ("Ada",), {}),
    ("counter_app", ("hi",), {"api_name": "/count"}),
    ("generator_app", (3, 0.0), {"api_name": "/count"}),  # a generator's final value
    ("generator_app", ("abc",), {"api_name": "/fail_after"}),
    ("files_app", (gradio_client.handle_file(str(TEXT_FILE)),), {"api_name": "/echo_file"}),
    ("files_app", (), {"api_name": "/gallery"}),
    ("files_app", ("notes",), {"api_name": "/chat_files"}),
    ("demos_app", ("animals",), {"api_name": "/update_choices"}),
    ("demos_app", (), {"api_name": "/hide"}),
    ("demos_app", ("x",), {"api_name": "/lambda"}),
    ("demos_app", ("x",), {"api_name": "/lambda_1"}),  # the first of two /lambda_1
    ("demos_app", (), {"fn_index": 4}),  # the second /lambda_1, the one /info describes
    ("demos_app", ("hi", []), {"api_name": "/chat"}),
    ("demos_app", (2,), {"api_name": "/gallery"}),
    ("demos_app", (5,), {"api_name": "/count_state"}),
    ("demos_app", (3,), {"api_name": "/count"}),
    ("demos_app", ("t",), {"api_name": "/selected"}),
    ("demos_app", ("t",), {"api_name": "/fail"}),
]


@pytest.mark.parametrize(
    ("clients", "args", "kwargs"),
    CALLS,
    indirect=["clients"],
    ids=[
        f"{app.removesuffix('_app')}-{k.get('api_name', k.get('fn_index'))}" for app, _, k in CALLS
    ],
)
def test_same_value_or_same_error_kind(
    clients: Pair, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Each call gives the same value (files by content), or errors of the same kind."""
    theirs, ours = clients
    expected = _outcome(theirs, args, kwargs)
    got = _outcome(ours, args, kwargs)
    assert got[0] == expected[0], (expected, got)
    if expected[0] == "value":
        assert got[1] == expected[1]
    else:
        kind = _builtin_kind(expected[1])
        assert isinstance(got[1], kind), (expected[1], got[1])
        assert isinstance(got[1], jobs.JobsError)


@pytest.mark.parametrize(
    "clients",
    [
        "calculator_app",
        "multi_app",
        "defaults_app",
        "counter_app",
        "generator_app",
        "files_app",
        "demos_app",
    ],
    indirect=True,
)
def test_view_api_dict_is_the_same(clients: Pair) -> None:
    """view_api(return_format="dict") returns what gradio_client returns, key for key."""
    theirs, ours = clients
    expected = theirs.view_api(print_info=False, return_format="dict")
    assert ours.view_api(print_info=False, return_format="dict") == expected


@pytest.mark.parametrize("clients", ["calculator_app"], indirect=True)
def test_missing_argument_message(clients: Pair) -> None:
    """A missing argument is a TypeError with gradio_client's words in both."""
    for client in clients:
        with pytest.raises(TypeError, match="No value provided for required argument: num2"):
            client.predict(1, "add", api_name="/predict")


@pytest.mark.parametrize("clients", ["generator_app"], indirect=True)
def test_iterating_a_failing_generator(clients: Pair) -> None:
    """Iteration yields the steps then ends; result() raises the app's error."""
    seen = []
    for client in clients:
        job = client.submit("abc", api_name="/fail_after")
        seen.append(list(job))
        with pytest.raises(ValueError, match="Generator failed after two steps"):
            job.result()
    assert seen[1] == seen[0] == ["abc 1", "abc 2"]


@pytest.mark.parametrize("clients", ["generator_app"], indirect=True)
def test_jobs_work_with_concurrent_futures(clients: Pair) -> None:
    """wait() and as_completed() take the jobs of either client, and give ours back."""
    results = []
    for client in clients:
        submitted = [client.submit(n, 0.0, api_name="/count") for n in (1, 2, 3)]
        done, _ = concurrent.futures.wait(submitted, timeout=60)
        finished = {j.result() for j in concurrent.futures.as_completed(submitted, timeout=60)}
        results.append(({f.result() for f in done}, finished))
    assert results[1] == results[0] == ({"0", "1", "2"}, {"0", "1", "2"})
    # gradio_client's wait() hands back the futures inside its jobs; ours are the jobs.
    _, ours = clients
    submitted = [ours.submit(n, 0.0, api_name="/count") for n in (1, 2)]
    done, pending = concurrent.futures.wait(submitted, timeout=60)
    assert done == set(submitted) and not pending


@pytest.mark.parametrize("clients", ["generator_app"], indirect=True)
def test_timeout_and_cancel_kinds(clients: Pair) -> None:
    """result(timeout=) raises a TimeoutError in both; our cancelled job's result() a
    CancelledError (gradio_client's, for a running generator, a KeyError of its own)."""
    theirs = clients[0]
    for client in clients:
        job = client.submit(50, 0.2, api_name="/count")
        with pytest.raises(TimeoutError):
            job.result(timeout=0.05)
        assert next(iter(job)) == "0"  # running: a generator stops after its current step
        assert job.cancel() is True
        # gradio_client's own answer depends on timing (its KeyError, or a CancelledError
        # when the cancel lands before the next step); ours is always a CancelledError.
        expected = (KeyError, concurrent.futures.CancelledError) if client is theirs else None
        with pytest.raises(expected or concurrent.futures.CancelledError):
            job.result(timeout=60)


@pytest.mark.parametrize("clients", ["files_app"], indirect=True)
def test_file_over_the_limit(clients: Pair, tmp_path: Path) -> None:
    """A file over max_file_size: a ValueError saying it exceeds the maximum file size."""
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 150_000)
    for client in clients:
        with pytest.raises(ValueError, match="exceeds the maximum file size"):
            client.predict(gradio_client.handle_file(str(big)), api_name="/echo_file")


@pytest.mark.parametrize("clients", ["demos_app"], indirect=True)
def test_download_refused_is_not_an_auth_error(clients: Pair) -> None:
    """A 403 "File not allowed" on an output file: gradio_client's HTTP error, our
    DownloadFailed naming the file; not a login problem."""
    theirs, ours = clients
    with pytest.raises(httpx.HTTPStatusError, match="403"):
        theirs.predict(api_name="/forbidden")
    with pytest.raises(jobs.DownloadFailed, match="would not serve") as caught:
        ours.predict(api_name="/forbidden")
    assert not isinstance(caught.value, jobs.AuthError)


@pytest.mark.parametrize("clients", ["demos_app"], indirect=True)
def test_validator_crash_is_the_apps_error(clients: Pair) -> None:
    """A validator that raises makes queue/join answer 400: gradio_client's HTTP error,
    our AppError (the app's fault), not a ProtocolError (ours)."""
    theirs, ours = clients
    if "/validator_crash" not in {e.api_name for e in ours.schema.endpoints}:
        pytest.skip("validators exist since gradio 6")
    with pytest.raises(httpx.HTTPStatusError, match="400"):
        theirs.predict("x", api_name="/validator_crash")
    with pytest.raises(jobs.AppError, match="validator") as caught:
        ours.predict("x", api_name="/validator_crash")
    assert not isinstance(caught.value, jobs.ProtocolError)


def test_gradio_client_keyword_arguments(calculator_app: RunningApp, tmp_path: Path) -> None:
    """gradio_client's Client arguments are accepted, positionally too, with their meaning."""
    with jobs.Client(
        calculator_app.url,
        None,  # token
        2,  # max_workers
        False,  # verbose
        httpx_kwargs={"timeout": 30},
        headers={"x-extra": "1"},
        download_files=str(tmp_path),
        ssl_verify=True,
        analytics_enabled=False,
    ) as client:
        submitted = [client.submit(i, "add", 1, headers={"x-per-job": "1"}) for i in range(5)]
        assert [j.result(timeout=60) for j in submitted] == [1, 2, 3, 4, 5]
    with pytest.raises(TypeError, match="'trust_me'"):
        jobs.Client(calculator_app.url, httpx_kwargs={"trust_me": True})


def test_builtin_kinds_of_the_error_tree() -> None:
    """The classes a gradio_client program catches are also builtins here."""
    assert issubclass(jobs.ArgumentError, TypeError) and issubclass(jobs.ArgumentError, ValueError)
    assert issubclass(jobs.AppError, ValueError) and issubclass(jobs.AuthError, ValueError)
    assert issubclass(jobs.JobCancelled, concurrent.futures.CancelledError)
    assert issubclass(jobs.JobTimeout, builtins.TimeoutError)


def test_status_codes_sort_as_gradio_clients() -> None:
    """Status codes sort in a job's order of life, as gradio_client's do (its ordering
    leaves LOG out: sorting it there raises, so it is left out of both)."""
    from gradio_client.utils import Status as TheirStatus

    theirs = [s.value for s in sorted(s for s in TheirStatus if s.value != "LOG")]
    ours = [s.value for s in sorted(s for s in jobs.Status if s is not jobs.Status.LOG)]
    assert ours == theirs
