"""report.html from run folders written by the store's own writer: what it shows, what
it leaves out of a large run, and folders from before `submitted_at` was recorded.
(The browser checks of real runs are in test_report_browser.py.)"""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

from support.cli import spacerun
from support.synthetic import write_synthetic_run

from runner.store import RecordStatus, ResultRecord, ResultsStore, build_report, write_summary
from runner.store._report import _plotly_js


def figures(report: Path) -> dict[str, dict[str, object]]:
    html = report.read_text(encoding="utf-8")
    found = re.search(r'<script id="figures" type="application/json">(.*?)</script>', html, re.S)
    assert found is not None
    data: dict[str, dict[str, object]] = json.loads(found.group(1))
    return data


def test_a_record_without_submitted_at_still_reads() -> None:
    """Lines written before `submitted_at` existed parse, and new lines carry it."""
    old = (
        b'{"key":"a","status":"ok","row":0,"inputs":{},"outputs":{"y":1},"error_type":null,'
        b'"error_message":null,"attempts":1,"causes":[],"replica":"r1","queue_time":0.1,'
        b'"run_time":0.2,"finished_at":"2026-01-01T00:00:01.000+00:00"}\n'
    )
    assert ResultRecord.from_line(old).submitted_at is None
    new = ResultRecord(key="b", row=1, status=RecordStatus.OK, submitted_at="2026-01-01T00:00:00")
    assert ResultRecord.from_line(new.to_line()).submitted_at == "2026-01-01T00:00:00"
    assert new.to_line().startswith(b'{"key":"b","status":"ok",')


def test_large_run_report_is_sampled_and_small(tmp_path: Path) -> None:
    """20,000 records: every count is in the report, but at most 3,000 timeline bars and
    the first 60 matrix rows; the file stays within 400 kB beyond plotly.js."""
    run_dir = write_synthetic_run(tmp_path / "run", 20_000)
    report = build_report(run_dir)
    html = report.read_text(encoding="utf-8")
    size = report.stat().st_size - len(_plotly_js())
    assert size < 400_000
    charts = figures(report)
    timeline = charts["timeline"]["data"]
    assert isinstance(timeline, list)
    drawn = [len(trace["y"]) for trace in timeline if trace["name"] in ("running", "failed")]
    assert 0 < sum(drawn) <= 3000
    lanes = {lane for trace in timeline for lane in trace["y"]}
    assert lanes == {"replica-1", "replica-2", "replica-3"}
    assert html.count('<tr><th class="rowlabel">') == 60
    failed = sum(
        json.loads(line)["status"] == "error" for line in (run_dir / "results.jsonl").open()
    )
    assert f'data-count="error"><div class="n">{failed}</div>' in html
    counts = [int(n) for n in re.findall(r'<div class="failure" data-count="(\d+)"', html)]
    assert sum(counts) == failed and len(counts) == 3  # numbers in messages fold together


def test_lines_in_another_form_give_the_same_report(tmp_path: Path) -> None:
    """A results file rewritten by another tool (every third line with its fields in
    another order and its times at a +02:00 offset) reports the same counts, charts,
    failures and gallery as the file the store wrote."""
    written = write_synthetic_run(tmp_path / "written", 3000)
    rewritten = tmp_path / "rewritten"
    shutil.copytree(written, rewritten)
    plus_two = timezone(timedelta(hours=2))
    with (rewritten / "results.jsonl").open("wb") as out:
        for i, line in enumerate((written / "results.jsonl").read_bytes().splitlines()):
            if i % 3 == 0:
                record = json.loads(line)
                for name in ("finished_at", "submitted_at"):
                    if name in record:
                        at = datetime.fromisoformat(record[name]).astimezone(plus_two)
                        record[name] = at.isoformat(timespec="milliseconds")
                line = json.dumps(dict(sorted(record.items()))).encode()
            out.write(line + b"\n")

    def shown(report: Path) -> tuple[dict[str, dict[str, object]], str]:
        html = report.read_text(encoding="utf-8")
        return figures(report), re.sub(r'<div class="sub">.*?</div>', "", html)

    expected = shown(build_report(written))
    assert shown(build_report(rewritten)) == expected
    assert 'data-count="error"><div class="n">0</div>' not in expected[1]


def test_report_of_a_run_in_progress(tmp_path: Path) -> None:
    """While a run is writing (no summary yet, a half-written last line), the report is
    built from the complete lines and says so; the CLI prints its path."""
    run_dir = tmp_path / "run"
    with ResultsStore.open(run_dir) as store:
        for i in range(5):
            store.append(
                ResultRecord(key=f"k{i}", row=i, status=RecordStatus.OK, outputs={"y": "x" * 500})
            )
    with (run_dir / "results.jsonl").open("ab") as handle:
        handle.write(b'{"key":"k5","status":"ok","ro')
    result = spacerun("report", str(run_dir))
    assert result.returncode == 0, result.stderr
    report = Path(result.stdout.strip())
    html = report.read_text(encoding="utf-8")
    assert report == run_dir / "report.html"
    assert 'data-count="ok"><div class="n">5</div>' in html
    assert "torn last line" in html
    assert html.count("<details>") == 5  # long text: shortened, the full value on demand


def test_cost_is_shown_when_the_summary_has_it(tmp_path: Path) -> None:
    """The cost of the paid copies (`cost_usd` in summary.json) appears in the summary."""
    run_dir = write_synthetic_run(tmp_path / "run", 30)
    write_summary(run_dir, {"name": "x", "total": 30, "cost_usd": 0.4213})
    html = build_report(run_dir).read_text(encoding="utf-8")
    assert re.search(r'id="cost">.*\$0\.42', html)


def test_report_of_no_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = spacerun("report", str(tmp_path / "missing"))
    assert result.returncode == 2
    assert "no run folder" in result.stderr
