"""Guards for the app fixtures: each app is up and its /config says what tests expect."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from conftest import SESSION_APPS
from support.apps import AppStartError, RunningApp, start_app

# Named up front so the session apps start together (in parallel) on first use.
pytestmark = pytest.mark.usefixtures(*SESSION_APPS)


def _config(app: RunningApp, **kwargs: Any) -> dict[str, Any]:
    response = httpx.get(f"{app.url}/config", trust_env=False, timeout=10, **kwargs)
    response.raise_for_status()
    config: dict[str, Any] = response.json()
    return config


def _api_names(app: RunningApp) -> set[str]:
    return {dep["api_name"] for dep in _config(app)["dependencies"] if dep["api_name"]}


@pytest.mark.parametrize(
    ("fixture", "expected"),
    [
        ("calculator_app", {"predict"}),
        ("generator_app", {"count", "stream_text", "chat", "fail_after", "progress"}),
        ("defaults_app", {"describe"}),
        ("quiet_crash_app", {"crash", "app_error"}),
        ("multi_app", {"greet", "add", "upper", "upper_1", "stats", "hidden"}),
        ("counter_app", {"count", "add"}),
        ("files_app", {"echo_file", "image", "audio", "gallery", "chat_files", "evil_name"}),
        ("slow_app", {"sleep", "slow_gen", "crash", "calls", "reset_calls"}),
    ],
)
def test_app_fixture_serves_its_endpoints(
    request: pytest.FixtureRequest, fixture: str, expected: set[str]
) -> None:
    """Every app fixture answers /config on 127.0.0.1 with the endpoints it promises."""
    app: RunningApp = request.getfixturevalue(fixture)
    assert app.url == f"http://127.0.0.1:{app.port}"
    assert expected <= _api_names(app)


def test_files_app_limits_upload_size(files_app: RunningApp) -> None:
    """The files app was launched with max_file_size="100kb"."""
    assert _config(files_app)["max_file_size"] == 100 * 1024


def test_auth_app_requires_login(auth_app: RunningApp) -> None:
    """/config is 401 without the cookie and 200 after logging in as alice."""
    with httpx.Client(base_url=auth_app.url, trust_env=False, timeout=10) as http:
        anonymous = http.get("/config")
        assert anonymous.status_code == 401, anonymous.text
        bad = http.post("/login", data={"username": "alice", "password": "nope"})
        assert bad.status_code == 400, bad.text
        login = http.post("/login", data={"username": "alice", "password": "wonderland"})
        assert login.status_code == 200, login.text
        logged_in = http.get("/config")
        assert logged_in.status_code == 200, (logged_in.text, dict(http.cookies))


def test_slow_app_counters_start_at_zero(slow_app: RunningApp) -> None:
    """The per-test slow app reports no calls, whatever earlier tests ran."""
    prefix = (slow_app.config or {}).get("api_prefix", "")
    with httpx.Client(base_url=slow_app.url, trust_env=False, timeout=10) as http:
        ran = http.post(f"{prefix}/run/sleep", json={"data": [0, "smoke"]})
        assert ran.status_code == 200
        calls = json.loads(http.post(f"{prefix}/run/calls", json={"data": []}).json()["data"][0])
    assert calls["sleep_completed"] == {"smoke": 1}


def test_kill_then_restart_serves_again_on_the_same_port(app_factory: Any) -> None:
    """kill() drops the server at once; restart() brings it back on its port."""
    app = app_factory("bench", env={"BENCH_DELAY": "0"})
    port, pid = app.port, app.pid
    app.kill()
    assert not app.is_running()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{app.url}/config", trust_env=False, timeout=2)
    app.restart()
    assert (app.port, app.is_running()) == (port, True)
    assert app.pid != pid
    assert _config(app)["version"] == app.gradio_version
    app.stop()
    app.stop()  # idempotent
    assert not app.is_running()


def test_app_that_crashes_at_startup_fails_with_its_log() -> None:
    """A broken app raises AppStartError quoting its own traceback, not a timeout."""
    with pytest.raises(AppStartError, match="could not convert string to float"):
        start_app("bench", env={"BENCH_DELAY": "not-a-number"}, ready_timeout=60)
