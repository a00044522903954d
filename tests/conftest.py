"""Fixtures that run the real Gradio apps of `tests/apps/` (see `support/apps.py`).

Session-scoped apps are started together, in parallel, the first time any of
them is needed, and only those the collected tests use. `slow_app` is per test:
it reuses one process while that process is idle and restarts it otherwise, so
every test sees empty queues and zeroed counters. `app_factory` starts any app
with its own env and stops it when the test ends.

Set SPACERUN_TEST_APP_PYTHON to another venv's python to run the apps on an
older gradio (`scripts/older_gradio.sh 5.50.0` prints one).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Generator, Iterator
from typing import Any

import httpx
import pluggy
import pytest
from support import servers
from support.apps import RunningApp, start_app, start_apps
from support.old_gradio import OldApps

# fixture name -> app name, for the apps shared by the whole session.
SESSION_APPS = {
    "calculator_app": "calculator",
    "generator_app": "generator",
    "defaults_app": "defaults",
    "quiet_crash_app": "quiet_crash",
    "multi_app": "multi",
    "counter_app": "counter",
    "auth_app": "auth",
    "files_app": "files",
    "demos_app": "demos",
    "slow_app": "slow",  # per test, but its process is shared (see slow_app)
}


# Fixtures that start a server themselves (those built on them are found through them).
SERVER_FIXTURES = {
    *SESSION_APPS,
    "app_factory",
    "hub",
    "schema",
    "_gauge_apps",
    "_tail_apps",
    "recorder",
    "recorder_app",
    "transcriber",
    "translator",
    "imagegen",
    "transcribe_url",
    "speech_app",  # test_datasets: the bundled transcription app
    "dataset_hub",  # test_datasets, test_dataset_images: the Hub stand-in with a dataset
    "spaces",
    "hostile",
    "clients",  # test_compat_gradio_client: the app fixture named by its parameter
    "cluster",  # a Ray cluster on this machine (tests/runner/test_ray.py)
    "old_apps",  # tests/old_gradio/apps/ on older gradio releases (support/old_gradio.py)
}
# Names that start a server when a test calls them in its body.
SERVER_NAMES = (
    "start_app",
    "FaultProxy",
    "HubServer",
    "HostileServer",
    "forms_app",
    "spacerun(",
    "SpacerunProcess(",
    "spacerun_popen(",
    "LocalApps",
)
# Modules whose every test runs apps, often through spacerun starting local copies.
SERVER_MODULES = {
    "test_api_change",
    "test_demo_apps",
    "test_gradio3",  # a gradio 3.50.2 app in its pinned venv, and gradio_client 1.13.3
    "test_local_replicas",
    "test_readme",
    "test_seed_guide",
    "test_map",
    "test_report_browser",  # and headless chromium
}


def _starts_servers(item: pytest.Item) -> bool:
    if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
        return True
    module = getattr(item, "module", None)
    if module is not None and module.__name__.rpartition(".")[2] in SERVER_MODULES:
        return True
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        source = ""
    return any(name in source for name in SERVER_NAMES)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{servers.MARK}: starts a Gradio app, a proxy, the Hub stand-in or spacerun"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that starts a server `app`: `-m "not app"` is the fast loop."""
    for item in items:
        if _starts_servers(item):
            item.add_marker(servers.MARK)


@pytest.fixture(autouse=True)
def _server_guard(request: pytest.FixtureRequest) -> Iterator[None]:
    servers.running(request.node)
    yield
    servers.running(None)


class _SessionApps:
    """Starts the session's apps lazily, all that are still needed at once."""

    def __init__(self, needed: set[str]) -> None:
        self._needed = needed
        self._running: dict[str, RunningApp] = {}

    def get(self, name: str) -> RunningApp:
        if name not in self._running:
            batch = sorted((self._needed | {name}) - self._running.keys())
            for app in start_apps(batch):
                self._running[app.name] = app
        return self._running[name]

    def stop_all(self) -> None:
        for app in self._running.values():
            app.stop()


@pytest.fixture(scope="session")
def _session_apps(request: pytest.FixtureRequest) -> Iterator[_SessionApps]:
    needed = {
        SESSION_APPS[fixture]
        for item in request.session.items
        for fixture in getattr(item, "fixturenames", ())
        if fixture in SESSION_APPS
    }
    apps = _SessionApps(needed)
    yield apps
    apps.stop_all()


@pytest.fixture(scope="session")
def calculator_app(_session_apps: _SessionApps) -> RunningApp:
    """/predict(num1, operation, num2); divide by zero -> gr.Error "Math error"."""
    return _session_apps.get("calculator")


@pytest.fixture(scope="session")
def generator_app(_session_apps: _SessionApps) -> RunningApp:
    """/count, /stream_text, /chat, /fail_after, /progress."""
    return _session_apps.get("generator")


@pytest.fixture(scope="session")
def defaults_app(_session_apps: _SessionApps) -> RunningApp:
    """/describe(name, greeting="Hello", times=2, suffix=None) -> JSON of its inputs."""
    return _session_apps.get("defaults")


@pytest.fixture(scope="session")
def quiet_crash_app(_session_apps: _SessionApps) -> RunningApp:
    """/crash and /app_error on an app launched with show_error=False."""
    return _session_apps.get("quiet_crash")


@pytest.fixture(scope="session")
def multi_app(_session_apps: _SessionApps) -> RunningApp:
    """/greet, /add, /upper + /upper_1, /stats (2 outputs), /hidden, /private."""
    return _session_apps.get("multi")


@pytest.fixture(scope="session")
def counter_app(_session_apps: _SessionApps) -> RunningApp:
    """State per session: /count(word) and /add(step)."""
    return _session_apps.get("counter")


@pytest.fixture(scope="session")
def auth_app(_session_apps: _SessionApps) -> RunningApp:
    """/echo behind login alice / wonderland."""
    return _session_apps.get("auth")


@pytest.fixture(scope="session")
def files_app(_session_apps: _SessionApps) -> RunningApp:
    """/echo_file, /image, /audio, /gallery, /chat_files, /evil_name; 100 kB uploads."""
    return _session_apps.get("files")


@pytest.fixture(scope="session")
def demos_app(_session_apps: _SessionApps) -> RunningApp:
    """Small apps in the style of gradio's demos (gr.update, a repeated api_name, ...)."""
    return _session_apps.get("demos")


def _slow_app_is_idle(app: RunningApp) -> bool:
    prefix = (app.config or {}).get("api_prefix", "")
    try:
        with httpx.Client(base_url=app.url, timeout=5, trust_env=False) as http:
            waiting = http.get(f"{prefix}/queue/status").json()["queue_size"]
            answer = http.post(f"{prefix}/run/calls", json={"data": []}).json()
            calls: dict[str, Any] = json.loads(answer["data"][0])
    except (httpx.HTTPError, KeyError, TypeError, ValueError):
        return False
    return waiting == 0 and calls["sleep_running"] == 0 and calls["slow_gen_running"] == 0


@pytest.fixture
def slow_app(_session_apps: _SessionApps) -> RunningApp:
    """/sleep, /slow_gen (limit 1, queue max_size 2), /crash, /calls: fresh per test.

    The process is reused when nothing is queued or running (counters are reset),
    else restarted on the same port: a cancelled sync /sleep keeps running in its
    thread, and would otherwise leak into the next test.
    """
    app = _session_apps.get("slow")
    prefix = (app.config or {}).get("api_prefix", "")
    if app.is_running() and _slow_app_is_idle(app):
        with httpx.Client(base_url=app.url, timeout=5, trust_env=False) as http:
            http.post(f"{prefix}/run/reset_calls", json={"data": []}).raise_for_status()
    else:
        app.restart()
    return app


@pytest.fixture(scope="session")
def old_apps() -> Iterator[OldApps]:
    """`old_apps.get("4.16.0")`: the seed app on that gradio release, started once per
    session (with every other version the session's tests ask for, in parallel)."""
    apps = OldApps()
    yield apps
    apps.stop_all()


class AppFactory:
    """`app_factory("bench", env={"BENCH_DELAY": "0"})` -> a RunningApp for this test.

    `app_factory.many(["a", "b"])` starts several in parallel. All stop at test end.
    """

    def __init__(self) -> None:
        self.apps: list[RunningApp] = []

    def __call__(
        self, name: str, *, env: dict[str, str] | None = None, python: str | None = None
    ) -> RunningApp:
        app = start_app(name, env=env, python=python)
        self.apps.append(app)
        return app

    def many(
        self, names: list[str], *, env: dict[str, str] | None = None, python: str | None = None
    ) -> list[RunningApp]:
        apps = start_apps(names, env=env, python=python)
        self.apps.extend(apps)
        return apps

    def stop_all(self) -> None:
        for app in self.apps:
            app.stop()


@pytest.fixture
def app_factory() -> Iterator[AppFactory]:
    factory = AppFactory()
    yield factory
    factory.stop_all()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pluggy.Result[pytest.TestReport], None]:
    """On failure, attach the log tail of every app the test used to the report."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed:
        return
    apps: list[RunningApp] = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, RunningApp):
            apps.append(value)
        elif isinstance(value, AppFactory):
            apps.extend(value.apps)
    for app in apps:
        report.sections.append((f"app log: {app.name} ({app.url})", app.log_tail()))
