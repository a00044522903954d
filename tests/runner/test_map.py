"""`runner.map`, `map_async` and `map_iter` against real Gradio apps: a DataFrame in, a
DataFrame out; a real Ctrl-C (SIGINT from the app at a known row) and a resume that
sends only what is missing, counted by the app itself."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pytest
from PIL import Image

import runner
from runner.store import RecordStatus

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(autouse=True)
def default_ctrl_c() -> Iterator[None]:
    """Ctrl-C as a fresh process has it (KeyboardInterrupt). Earlier tests of the same
    pytest process run event loops with signal handlers of their own; in the whole
    suite these tests saw no KeyboardInterrupt at all, alone they always do."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


class Recorder:
    """A recorder app (`tests/apps/recorder.py`) and the inputs it received."""

    def __init__(self, app_factory: Any, tmp_path: Path, **env: str) -> None:
        self.log = tmp_path / "received.log"
        self.fails = tmp_path / "refuse.txt"
        self.app = app_factory(
            "recorder",
            env={"RECORDER_LOG": str(self.log), "RECORDER_FAILS": str(self.fails), **env},
        )

    def received(self) -> Counter[str]:
        try:
            return Counter(self.log.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return Counter()


def test_a_dataframe_with_a_matrix_is_interrupted_and_resumed(
    app_factory: Any, tmp_path: Path
) -> None:
    """200 rows x a 2-value matrix: Ctrl-C at row 60 returns what finished (with a
    warning); the same call again sends only what is missing and returns all 400 rows
    aligned with the input, outputs as columns, the refused row as an error."""
    app = Recorder(
        app_factory,
        tmp_path,
        RECORDER_DELAY="0.01",
        RECORDER_INTERRUPT_ON="r0060",
        RECORDER_INTERRUPT_PID=str(os.getpid()),
    )
    app.fails.write_text("r0007\n", encoding="utf-8")
    df = pd.DataFrame({"x": [f"r{i:04d}" for i in range(200)]}, index=range(1000, 1200))
    kwargs: dict[str, Any] = {
        "app": app.app.url,
        "endpoint": "/predict",
        "matrix": {"n": [1, 2]},
        "concurrency": 2,
        "run_dir": tmp_path / "run",
        "progress": "quiet",
    }
    with pytest.warns(RuntimeWarning, match="interrupted"):
        first = runner.map(df, **kwargs)
    assert len(first) == 400
    done = int((first["status"] == "ok").sum())
    assert 0 < done < 399
    assert (tmp_path / "run" / "report.html").exists()  # written however the run ended
    sent_first = sum(app.received().values())

    out = runner.map(df, **kwargs)
    sent_again = sum(app.received().values()) - sent_first
    assert sent_again == 400 - done  # only what was not ok: the 399 missing ones and the refused
    assert list(out.index) == [i for i in range(1000, 1200) for _ in (1, 2)]
    assert list(out["x"]) == [x for x in df["x"] for _ in (1, 2)]
    assert list(out["n"]) == [1, 2] * 200
    refused = out[out["x"] == "r0007"]
    assert list(refused["status"]) == ["error", "error"]
    assert refused["error"].str.contains("Refused: r0007").all()
    fine = out[out["x"] != "r0007"]
    assert (fine["status"] == "ok").all()
    assert list(fine["outputs.y"]) == [x.upper() for x in fine["x"]]
    assert out["key"].is_unique


def test_file_outputs_are_local_paths(files_app: Any, tmp_path: Path) -> None:
    """A list of dicts in; image outputs come back as paths of files in the run folder."""
    images = []
    for i, colour in enumerate(["red", "green", "blue"]):
        path = tmp_path / f"in{i}.png"
        Image.new("RGB", (8, 4), colour).save(path)
        images.append({"picture": str(path)})
    out = runner.map(
        images,
        app=files_app.url,
        endpoint="/image",
        map={"path": "{picture}"},
        run_dir=tmp_path / "run",
        progress="quiet",
    )
    assert list(out["status"]) == ["ok"] * 3
    [column] = [c for c in out.columns if c.startswith("outputs.")]
    for source, produced in zip(images, out[column], strict=True):
        path = Path(produced)
        assert path.is_absolute() and path.is_relative_to(tmp_path / "run" / "files")
        with Image.open(path) as mirrored, Image.open(source["picture"]) as original:
            assert mirrored.size == original.size


def test_map_iter_yields_results_as_they_finish(app_factory: Any, tmp_path: Path) -> None:
    """The async iterator gives every result once, ok and failed; leaving it early stops
    the run, and `map_async` then finishes the rest."""
    app = Recorder(app_factory, tmp_path, RECORDER_DELAY="0.02")
    app.fails.write_text("r3\n", encoding="utf-8")
    rows = [{"x": f"r{i}"} for i in range(40)]
    options: dict[str, Any] = {
        "app": app.app.url,
        "endpoint": "/predict",
        "concurrency": 2,
        "progress": "quiet",
    }

    async def main() -> tuple[list[runner.MapResult], pd.DataFrame, int]:
        seen: list[runner.MapResult] = []
        async with runner.map_iter(rows, run_dir=tmp_path / "part", **options) as results:
            async for result in results:
                seen.append(result)
                if len(seen) == 10:
                    break
        sent = sum(app.received().values())
        table = await runner.map_async(rows, run_dir=tmp_path / "part", **options)
        return seen, table, sent

    seen, table, sent_before = anyio.run(main)
    assert len(seen) == 10
    assert sent_before < 40  # the run stopped when the loop left
    assert all(isinstance(r, runner.MapResult) for r in seen)
    assert list(table["status"]) == ["error" if r["x"] == "r3" else "ok" for r in rows]

    async def every() -> list[runner.MapResult]:
        async with runner.map_iter(rows, run_dir=tmp_path / "all", **options) as results:
            return [r async for r in results]

    got = anyio.run(every)
    assert sorted(r.row for r in got) == list(range(40))
    by_row = {r.row: r for r in got}
    assert by_row[3].status is RecordStatus.ERROR and "Refused" in (by_row[3].error or "")
    assert by_row[5].outputs == {"y": "R5"}


def test_a_ctrl_c_delivered_to_another_thread_stops_map(app_factory: Any, tmp_path: Path) -> None:
    """The kernel hands a process's SIGINT to any of its threads: one that lands on a
    thread other than the one waiting in `map` (here a helper thread that signals
    itself once row 30 reached the app) still stops the run, with the warning."""
    app = Recorder(app_factory, tmp_path, RECORDER_DELAY="0.02")
    rows = [{"x": f"r{i}"} for i in range(200)]

    def interrupt_from_this_thread() -> None:
        deadline = time.monotonic() + 60
        while "r30" not in app.received() and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    helper = threading.Thread(target=interrupt_from_this_thread, daemon=True)
    helper.start()
    with pytest.warns(RuntimeWarning, match="interrupted"):
        out = runner.map(
            rows,
            app=app.app.url,
            endpoint="/predict",
            concurrency=2,
            run_dir=tmp_path / "run",
            progress="quiet",
        )
    helper.join()
    assert 0 < int((out["status"] == "ok").sum()) < 200


def test_unknown_options_are_named() -> None:
    """A misspelt option fails before anything runs, naming it and the valid ones."""
    with pytest.raises(TypeError, match=r"unknown options \['concurrenzy'\].*'matrix'"):
        runner.map([{"x": "a"}], app="http://127.0.0.1:9", concurrenzy=3)
