"""Faults that come together, the way a long batch meets them.

Three replicas of `tests/apps/recorder.py`, each behind the fault proxy, which answers
a few joins with 502 or 429 (`Retry-After: 1`) and cuts a few event streams mid-body,
all drawn from seeded generators. `spacerun run` (a subprocess, as a user runs it) is
killed with SIGKILL three times and resumed: once after a replica stopped mid-run and
came back on its port; once after a resume that started while a replica was stopped
(it is started again on its port and must be brought in); once after a few results.
The last resume runs to the end, and one more finds nothing to do.

What the apps received is read from their log (every input is appended when a call
starts), so "sent again" is counted on the server side: every row ends ok exactly once,
no row already ok before a resume reaches an app again, every run that completes exits
0, every results line parses, no run prints a traceback. `run.rate` (set per run, as a
user may) paces the batch so that the replica restarts land mid-run on two cores.
"""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.apps import RunningApp
from support.cli import SpacerunProcess
from support.fault_proxy import CutStream, FaultProxy, Respond, Rule
from support.results import ok_inputs, records, wait_until

pytestmark = pytest.mark.timeout(600)

ROWS = 500
#: While a replica restarts (several seconds on a busy machine, then the probe's growing
#: interval), the batch is paced slowly so that rows are left when it is back.
SLOW, FAST = "3/s", "20/s"
FAULT_RATE = 0.04


class Batch:
    """The apps, their proxies and the run folder, with what each run changed."""

    def __init__(self, apps: list[RunningApp], proxies: list[FaultProxy], tmp: Path) -> None:
        self.apps, self.proxies = apps, proxies
        self.log = tmp / "received.log"
        self.run_dir = tmp / "run"
        self.expected = [f"row{i:04d}" for i in range(ROWS)]
        (tmp / "rows.csv").write_text("x\n" + "".join(f"{x}\n" for x in self.expected))
        replicas = "".join(f"    - url: {p.url}\n" for p in proxies)
        self.manifest = tmp / "batch.yaml"
        self.manifest.write_text(
            f"name: combined\napp:\n  endpoint: /predict\n  replicas:\n{replicas}"
            f"inputs:\n  csv: rows.csv\n"
            f"run:\n  concurrency: 4\n  retries: 5\n"
            f"output:\n  dir: {self.run_dir}\n  download_files: false\n"
        )
        self.runs: list[tuple[str, int]] = []

    def received(self) -> Counter[str]:
        try:
            return Counter(self.log.read_text(encoding="utf-8").splitlines())
        except FileNotFoundError:
            return Counter()

    def results(self) -> int:
        return len(records(self.run_dir))

    def served_by(self, replica: int) -> int:
        url = self.proxies[replica].url
        return sum(1 for r in records(self.run_dir) if r["replica"] == url)

    def run(
        self, what: str, steer: Callable[[SpacerunProcess], int | None], rate: str = FAST
    ) -> SpacerunProcess:
        """One `spacerun run` at `rate`, steered by `steer` (which may kill it); checks
        that no row ok before it reached an app again, and that a run that ended by
        itself exited 0."""
        done_before, received_before = ok_inputs(self.run_dir), self.received()
        spacerun = SpacerunProcess(self.manifest, "--set", f"run.rate={rate}")
        try:
            code = steer(spacerun)
            if code is None:
                code = spacerun.wait()
                assert code == 0, spacerun.output()
        finally:
            spacerun.stop()
        self.runs.append((what, code))
        received = self.received()
        resent = {x: received[x] - received_before[x] for x in done_before}
        assert not {x: n for x, n in resent.items() if n}, f"{what}: ok rows sent again"
        assert "Traceback" not in spacerun.output(), spacerun.output()
        return spacerun


@pytest.fixture
def batch(app_factory: Any, tmp_path: Path) -> Iterator[Batch]:
    env = {"RECORDER_LOG": str(tmp_path / "received.log"), "RECORDER_DELAY": "0.05"}
    apps = app_factory.many(["recorder"] * 3, env=env)
    proxies = [FaultProxy(app.url).start() for app in apps]
    try:
        yield Batch(apps, proxies, tmp_path)
    finally:
        for proxy in proxies:
            proxy.stop()


def seeded_faults(proxies: list[FaultProxy]) -> dict[str, list[Rule]]:
    kinds: dict[str, list[Rule]] = {"502 on join": [], "429 on join": [], "cut stream": []}
    for index, proxy in enumerate(proxies):

        def join(seed: int, action: Respond) -> Rule:
            return Rule(
                path=r"queue/join$",
                method="POST",
                probability=FAULT_RATE,
                seed=seed,
                action=action,
            )

        kinds["502 on join"].append(proxy.add_rule(join(100 + index, Respond.error(502))))
        kinds["429 on join"].append(
            proxy.add_rule(join(200 + index, Respond.too_many_requests(retry_after=1)))
        )
        kinds["cut stream"].append(
            proxy.add_rule(
                Rule(
                    path=r"queue/data$",
                    method="GET",
                    probability=FAULT_RATE,
                    seed=300 + index,
                    action=CutStream(after_messages=1),
                )
            )
        )
    return kinds


def test_combined_faults_every_row_ok_exactly_once(batch: Batch) -> None:
    kinds = seeded_faults(batch.proxies)
    started = time.monotonic()
    down_url, mid_url = batch.proxies[2].url, batch.proxies[1].url

    def replica_stops_mid_run(spacerun: SpacerunProcess) -> int:
        wait_until(lambda: batch.results() >= 30, "30 results")
        batch.apps[1].kill()
        spacerun.wait_line(mid_url, "taken out of rotation")
        batch.apps[1].restart()  # on its port
        spacerun.wait_line(mid_url, "answers again; back in rotation")
        served = batch.served_by(1)
        wait_until(lambda: batch.served_by(1) > served, "a result from the restarted replica")
        return spacerun.kill9()

    batch.run("a replica stopped mid-run, killed", replica_stops_mid_run, SLOW)
    batch.apps[2].kill()  # replica 2 is down when the next run starts

    def down_at_start(spacerun: SpacerunProcess) -> int:
        spacerun.wait_line(down_url, "is down at start")
        before = batch.results()
        batch.apps[2].restart()  # on its port, while the run goes on without it
        spacerun.wait_line(down_url, "answers now; in rotation")
        served = batch.served_by(2)
        wait_until(lambda: batch.served_by(2) > served, "a result from the returned replica")
        assert batch.results() > before
        return spacerun.kill9()

    batch.run("started with a replica down, killed", down_at_start, SLOW)

    def killed_soon(spacerun: SpacerunProcess) -> int:
        before = batch.results()
        wait_until(lambda: batch.results() >= before + 40, "40 more results")
        return spacerun.kill9()

    batch.run("killed after 40 more results", killed_soon)
    batch.run("resumed to the end", lambda spacerun: None)
    received = batch.received()
    batch.run("nothing left", lambda spacerun: None)
    assert batch.received() == received  # nothing was sent at all
    wall = time.monotonic() - started

    data = (batch.run_dir / "results.jsonl").read_bytes()
    assert data.endswith(b"\n")
    lines = [json.loads(line) for line in data.splitlines()]  # every line whole
    ok = ok_inputs(batch.run_dir)
    assert set(ok) == set(batch.expected)
    assert all(n == 1 for n in ok.values()), {x: n for x, n in ok.items() if n > 1}
    assert set(batch.received()) == set(batch.expected)
    assert [code for _, code in batch.runs] == [-signal.SIGKILL] * 3 + [0, 0]

    faults = {kind: sum(p.hits(rule) for p, rule in zip(batch.proxies, rules, strict=True))
              for kind, rules in kinds.items()}  # fmt: skip
    injected_502 = faults["502 on join"]
    faults["502 from a stopped replica"] = sum(p.counts(status=502) for p in batch.proxies) - (
        injected_502
    )
    assert all(n > 0 for n in faults.values()), faults
    figures = {
        "rows": ROWS,
        "results_lines": len(lines),
        "sent_to_apps": sum(batch.received().values()),
        "faults": faults,
        "replica_restarts": 2,
        "sigkills": 3,
        "runs": batch.runs,
        "torn_lines_repaired": _torn(batch.run_dir),
        "wall_seconds": round(wall, 1),
    }
    print("combined-fault figures:", json.dumps(figures))


def _torn(run_dir: Path) -> int:
    torn = run_dir / "results.jsonl.torn"
    # One line (the cut-away bytes) per repair.
    return torn.read_bytes().count(b"\n") if torn.exists() else 0
