"""What the user watches: the bar, plain messages, JSON lines."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Any

from runner.run import Progress
from runner.scheduling import Outcome
from runner.store import RecordStatus


@dataclass(frozen=True)
class _Sub:
    key: str
    row: int = 0
    inputs: dict[str, Any] = field(default_factory=dict)


def test_bar_mode_keeps_messages_before_during_and_after_the_bar() -> None:
    """Start-up messages, messages while the bar runs, and the summary all reach the user."""
    out = io.StringIO()
    progress = Progress(mode="bar", stream=out)
    progress.message("starting 2 local copies")
    progress.start(total=2)
    progress.attempt_started("a", "local-1")
    progress.message("local-2 is overloaded")
    progress.outcome(Outcome(submission=_Sub("a"), status=RecordStatus.OK, attempts=1))
    progress.skip()
    progress.close()
    progress.message("summary: 1 ok")
    text = out.getvalue()
    for line in ("starting 2 local copies", "local-2 is overloaded", "summary: 1 ok"):
        assert line in text
    assert "2/2" in text and "ok 1 failed 0" in text


def test_json_mode_lines_parse() -> None:
    """--progress json: every line is a JSON object with the counts."""
    out = io.StringIO()
    progress = Progress(mode="json", stream=out, json_interval=0)
    progress.start(total=3)
    progress.attempt_started("a", "r")
    progress.retrying("a", "ConnectionFailed: x", 0.5)
    progress.outcome(Outcome(submission=_Sub("a"), status=RecordStatus.ERROR, attempts=2))
    progress.close()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[-1]["failed"] == 1 and lines[-1]["total"] == 3
    assert any(line.get("retrying") == 1 for line in lines)
