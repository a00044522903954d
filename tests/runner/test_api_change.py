"""A replica whose app changes under a running batch (a redeploy, a restart from edited
code): its API is read again before it gets another row, rows are re-mapped by name when
they still fit, and a replica they no longer fit is taken out, naming the change.

Every test checks every recorded output against the inputs of its own row: no result
computed from the wrong inputs may be recorded ok.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.apps import RunningApp, start_app
from support.fault_proxy import FaultProxy, Respond, Rule
from support.hub import HubServer

from runner.errors import ApiChanged
from runner.run import RunOptions, run_async
from runner.scheduling import AllReplicasDown
from runner.store import ResultRecord

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

APP = Path(__file__).resolve().parents[1] / "apps" / "names.py"
ROWS = 300


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def names_app() -> Iterator[Callable[..., RunningApp]]:
    started: list[RunningApp] = []

    def start(variant: str = "v1", delay: float = 0.02) -> RunningApp:
        app = start_app("names", env={"NAMES_VARIANT": variant, "NAMES_DELAY": str(delay)})
        started.append(app)
        return app

    yield start
    for app in started:
        app.stop()


def write_manifest(
    tmp_path: Path, replicas: list[dict[str, Any]], rows: int = ROWS, **run: Any
) -> Path:
    csv = tmp_path / "people.csv"
    csv.write_text(
        "first,last\n" + "".join(f"Ann{i},Lee{i}\n" for i in range(rows)), encoding="utf-8"
    )
    manifest = {
        "name": "names",
        "app": {"endpoint": "/names", "replicas": replicas},
        "inputs": {"csv": str(csv)},
        "run": {"concurrency": 4, "retries": 5, **run},
        "output": {"dir": str(tmp_path / "run")},
    }
    path = tmp_path / "names.yaml"
    path.write_text(json.dumps(manifest), encoding="utf-8")  # JSON is YAML
    return path


def records(run_dir: Path) -> list[ResultRecord]:
    lines = (run_dir / "results.jsonl").read_bytes().splitlines()
    return [ResultRecord.from_line(line) for line in lines if line.strip()]


def check_every_output(run_dir: Path) -> dict[str, ResultRecord]:
    """Each ok record's output is what its own row's inputs give; returns them by key."""
    ok: dict[str, ResultRecord] = {}
    for record in records(run_dir):
        if record.status.value != "ok":
            continue
        assert record.key not in ok, f"{record.key} recorded ok twice"
        assert record.outputs is not None
        expected = f"{record.inputs['first']} {record.inputs['last']}"
        assert record.outputs == {"full": expected}, (record.inputs, record.outputs)
        ok[record.key] = record
    return ok


def results_on_disk(run_dir: Path) -> int:
    try:
        return (run_dir / "results.jsonl").read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


async def run_and_redeploy(
    manifest: Path, app: RunningApp, variant: str, after: int = 80
) -> tuple[Any, BaseException | None]:
    """Run the manifest; once `after` results are on disk, restart `app` on its port as
    `variant`. Returns the summary (None if the run raised) and what it raised."""
    out: dict[str, Any] = {"summary": None, "error": None}
    run_dir = manifest.parent / "run"

    async def go() -> None:
        try:
            out["summary"] = await run_async(
                manifest, RunOptions(progress="quiet", handle_signals=False)
            )
        except AllReplicasDown as exc:
            out["error"] = exc

    async with anyio.create_task_group() as group:
        group.start_soon(go)
        with anyio.fail_after(60):
            # There is no event for "N results on disk" outside the run: poll the file.
            while results_on_disk(run_dir) < after:  # noqa: ASYNC110
                await anyio.sleep(0.005)
        app.env["NAMES_VARIANT"] = variant
        await anyio.to_thread.run_sync(app.restart)
    return out["summary"], out["error"]


def summary_of(run_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text())
    return data


async def test_inputs_reordered_by_a_redeploy_are_remapped_by_name(
    names_app: Callable[..., RunningApp], tmp_path: Path
) -> None:
    app = names_app()
    manifest = write_manifest(tmp_path, [{"url": app.url}])
    summary, error = await run_and_redeploy(manifest, app, "swapped")
    assert error is None and summary is not None
    run_dir = tmp_path / "run"
    ok = check_every_output(run_dir)
    assert len(ok) == ROWS and summary.complete
    # The change is said once, with what changed and on which replica.
    changes = summary_of(run_dir)["api_changes"]
    assert len(changes) == 1, changes
    assert changes[0]["replica"] == summary.replicas[0].name
    assert changes[0]["action"] == "re-mapped by name"
    assert "another order" in changes[0]["change"]
    # Each record names the API that computed it: two signatures, both gradio's.
    signatures = {r.api["signature"] for r in ok.values() if r.api is not None}
    assert len(signatures) == 2 and all(r.api is not None for r in ok.values())
    assert {r.api["gradio"] for r in ok.values() if r.api} == {app.gradio_version}


async def test_a_dropped_parameter_takes_the_replica_out_and_the_other_finishes(
    names_app: Callable[..., RunningApp], tmp_path: Path
) -> None:
    # The steady replica is slow enough that the changed one is back before the end.
    changing, steady = names_app(), names_app(delay=0.1)
    manifest = write_manifest(tmp_path, [{"url": changing.url}, {"url": steady.url}])
    summary, error = await run_and_redeploy(manifest, changing, "dropped")
    assert error is None and summary is not None
    run_dir = tmp_path / "run"
    ok = check_every_output(run_dir)
    assert len(ok) == ROWS and summary.complete
    (change,) = summary_of(run_dir)["api_changes"]
    assert change["action"] == "taken out"
    assert "parameter 'last' is gone" in change["change"]
    # Nothing was recorded from the changed app: its results would say "? ".
    assert not any("?" in str(r.outputs) for r in records(run_dir))
    assert change["replica"] == summary.replicas[0].name  # the steady one finished it


async def test_a_relabelled_output_with_no_replica_left_stops_resumably(
    names_app: Callable[..., RunningApp], tmp_path: Path
) -> None:
    app = names_app()
    manifest = write_manifest(tmp_path, [{"url": app.url}])
    summary, error = await run_and_redeploy(manifest, app, "relabelled")
    assert summary is None and isinstance(error, AllReplicasDown)
    assert "'name'" in str(error) and "'full'" in str(error)
    run_dir = tmp_path / "run"
    stopped = summary_of(run_dir)
    assert stopped["exit_status"] == 1 and "changed API" in stopped["stopped_by"]
    assert stopped["resume_command"]
    first_ok = check_every_output(run_dir)
    assert 80 <= len(first_ok) < ROWS

    # Resumed against the changed app: stopped before anything is sent, saying why.
    lines_before = results_on_disk(run_dir)
    with pytest.raises(ApiChanged, match="'name'"):
        await run_async(manifest, RunOptions(progress="quiet", handle_signals=False))
    assert results_on_disk(run_dir) == lines_before

    # The app is fixed: running again finishes the batch, with no row recorded twice.
    app.env["NAMES_VARIANT"] = "v1"
    await anyio.to_thread.run_sync(app.restart)
    again = await run_async(manifest, RunOptions(progress="quiet", handle_signals=False))
    assert again.complete and again.skipped_already_ok == len(first_ok)
    assert len(check_every_output(run_dir)) == ROWS


async def test_a_new_optional_parameter_fits_and_its_default_is_sent(
    names_app: Callable[..., RunningApp], tmp_path: Path
) -> None:
    app = names_app()
    manifest = write_manifest(tmp_path, [{"url": app.url}])
    summary, error = await run_and_redeploy(manifest, app, "extra")
    assert error is None and summary is not None and summary.complete
    run_dir = tmp_path / "run"
    assert len(check_every_output(run_dir)) == ROWS
    (change,) = summary_of(run_dir)["api_changes"]
    assert "a new optional parameter 'title'" in change["change"]


async def test_a_restart_between_two_rows_no_job_saw_is_caught_by_the_idle_check(
    names_app: Callable[..., RunningApp], tmp_path: Path
) -> None:
    """One row every 8 s: the app is restarted with its inputs swapped while no job is
    on it, so no job fails. The idle replica's API is read again before the next row."""
    app = names_app()
    manifest = write_manifest(tmp_path, [{"url": app.url}], rows=3, rate="7.5/min")
    summary, error = await run_and_redeploy(manifest, app, "swapped", after=1)
    assert error is None and summary is not None and summary.complete
    run_dir = tmp_path / "run"
    assert len(check_every_output(run_dir)) == 3
    (change,) = summary_of(run_dir)["api_changes"]
    assert change["action"] == "re-mapped by name"


async def test_a_space_rebuilt_mid_run_is_checked_when_it_runs_again(
    names_app: Callable[..., RunningApp], tmp_path: Path
) -> None:
    """A Space rebuilds from a new commit mid-batch: the Hub says APP_STARTING and its
    proxy answers 503 while the new build (inputs swapped) starts; once it runs again,
    its API is read before it takes another row."""
    app = names_app()
    with FaultProxy(app.url) as proxy, HubServer() as hub:
        hub.add_space("bob/names", host=proxy.url)
        manifest = write_manifest(tmp_path, [{"space": "bob/names"}], rows=120)
        run_dir = tmp_path / "run"
        out: dict[str, Any] = {}

        async def go() -> None:
            options = RunOptions(progress="quiet", handle_signals=False, hub_endpoint=hub.url)
            out["summary"] = await run_async(manifest, options)

        async with anyio.create_task_group() as group:
            group.start_soon(go)
            with anyio.fail_after(60):
                while results_on_disk(run_dir) < 40:  # noqa: ASYNC110
                    await anyio.sleep(0.005)
            hub.set_stage("bob/names", "APP_STARTING")
            building = proxy.add_rule(Rule(path=".*", action=Respond.error(503)))
            app.env["NAMES_VARIANT"] = "swapped"
            await anyio.to_thread.run_sync(app.restart)
            proxy.remove_rule(building)
            hub.set_stage("bob/names", "RUNNING")
    assert out["summary"].complete
    assert len(check_every_output(run_dir)) == 120
    (change,) = summary_of(run_dir)["api_changes"]
    assert change["replica"] == "bob/names" and change["action"] == "re-mapped by name"


async def test_a_local_copy_restarted_from_edited_code_is_checked_again(
    tmp_path: Path,
) -> None:
    """The pool restarts a `local:` copy that died; its script was edited meanwhile (the
    inputs swapped): the copy is read again and rows go to it by name."""
    script = tmp_path / "names.py"
    script.write_text(APP.read_text(encoding="utf-8"), encoding="utf-8")
    compat = APP.parent / "_compat.py"
    (tmp_path / "_compat.py").write_text(compat.read_text(encoding="utf-8"), encoding="utf-8")
    manifest = write_manifest(tmp_path, [{"local": str(script)}])
    run_dir = tmp_path / "run"
    out: dict[str, Any] = {}

    async def go() -> None:
        out["summary"] = await run_async(
            manifest, RunOptions(progress="quiet", handle_signals=False)
        )

    async with anyio.create_task_group() as group:
        group.start_soon(go)
        with anyio.fail_after(90):
            while results_on_disk(run_dir) < 80:  # noqa: ASYNC110
                await anyio.sleep(0.005)
        source = script.read_text(encoding="utf-8")
        script.write_text(
            source.replace('os.environ.get("NAMES_VARIANT", "v1")', '"swapped"'),
            encoding="utf-8",
        )
        kill_copies_of(script)
    summary = out["summary"]
    assert summary.complete
    assert len(check_every_output(run_dir)) == ROWS
    (change,) = summary_of(run_dir)["api_changes"]
    assert change["action"] == "re-mapped by name"


def kill_copies_of(script: Path) -> None:
    """SIGKILL the app processes running `script`, as a crash would."""
    found = subprocess.run(
        ["pgrep", "-f", str(script)], capture_output=True, text=True, check=False
    ).stdout.split()
    assert found, f"no process runs {script}"
    for pid in found:
        os.kill(int(pid), signal.SIGKILL)
