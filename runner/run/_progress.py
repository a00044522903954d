"""What the user watches while a batch runs: a tqdm bar on a terminal, JSON lines for
machines, or nothing. Only this module and the CLI print."""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import IO, Any

import anyio
from tqdm import tqdm

from jobs import StatusUpdate

from ..scheduling import Outcome
from ..store import RecordStatus

__all__ = ["Progress", "ProgressMode"]

#: "bar" (a terminal), "notebook" (tqdm.auto: a widget in Jupyter, else a bar), "json"
#: (one JSON line per second), "plain" (messages only), "quiet" (nothing), or "auto":
#: bar on a terminal, else plain.
ProgressMode = str


class Progress:
    """Counts outcomes and shows them. Also the scheduler's listener."""

    def __init__(
        self,
        *,
        mode: ProgressMode = "auto",
        stream: IO[str] | None = None,
        json_interval: float = 1.0,
    ) -> None:
        self._stream = stream or sys.stderr
        if mode == "auto":
            mode = "bar" if self._stream.isatty() else "plain"
        self.mode = mode
        self.counts: Counter[str] = Counter()
        self._retrying: set[str] = set()
        self.in_flight: set[str] = set()
        self.total: int | None = None
        self.skipped = 0
        self._bar: tqdm[Any] | None = None
        self._json_interval = json_interval
        self._last_json = 0.0
        self._started = time.monotonic()
        #: The account-level pause under way, as text (set by the run), or None.
        self.pause_text: Callable[[], str | None] = lambda: None
        #: The app's latest log message ("ZeroGPU queue: Waiting for a GPU ..."), if any.
        self.last_note: str | None = None
        #: Masks secrets in everything shown (set by the run from its manifest).
        self.mask: Callable[[str], str] = str

    # -- run lifecycle -----------------------------------------------------------------

    def start(self, *, total: int | None) -> None:
        self.total = total
        self._started = time.monotonic()
        if self.mode in ("bar", "notebook"):
            # tqdm.auto draws a widget in a notebook and a text bar anywhere else.
            bar = _auto_tqdm() if self.mode == "notebook" else tqdm
            self._bar = bar(
                total=total, file=self._stream, unit="job", dynamic_ncols=True, smoothing=0.05
            )
            if self.skipped:  # counted before the bar existed (rows skipped early)
                self._bar.update(self.skipped)
        self._emit(force=True)

    def skip(self, count: int = 1) -> None:
        """`count` submissions that need no work (already ok, or identical rows)."""
        self.skipped += count
        if self._bar is not None:
            self._bar.update(count)

    def message(self, text: str) -> None:
        text = self.mask(text)
        if self._bar is not None:
            self._bar.write(text, file=self._stream)
        elif self.mode == "json":
            self._json({"event": "message", "text": text})
        elif self.mode in ("plain", "bar", "notebook"):  # a bar mode before or after the bar
            self._stream.write(text + "\n")
            self._stream.flush()

    def close(self) -> None:
        self._emit(force=True)
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- SchedulerListener -------------------------------------------------------------

    def attempt_started(self, key: str, replica: str) -> None:
        self.in_flight.add(key)
        self._retrying.discard(key)
        self._emit()

    def retrying(self, key: str, cause: str, delay: float) -> None:
        self.in_flight.discard(key)
        self._retrying.add(key)
        self.counts["retries"] += 1
        self._emit()

    def outcome(self, outcome: Outcome) -> None:
        key = outcome.submission.key
        self.in_flight.discard(key)
        self._retrying.discard(key)
        self.counts[outcome.status.value] += 1
        if self._bar is not None:
            self._bar.update(1)
        self._emit()

    def app_log(self, update: StatusUpdate) -> None:
        """A job's `log` message (gr.Info / gr.Warning): the latest shows on the line."""
        if update.log is None:
            return
        level, text = update.log
        note = f"{update.log_title}: {text}" if update.log_title else text
        note = self.mask(note)
        self.last_note = f"{level}: {note}" if level not in ("info", "success") else note
        self._emit()

    async def tick(self, every: float = 1.0) -> None:
        """Refresh the display while nothing happens (a pause): runs until cancelled."""
        while True:
            await anyio.sleep(every)
            self._emit()

    # -- display ------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        done = sum(self.counts[s.value] for s in RecordStatus)
        elapsed = max(1e-9, time.monotonic() - self._started)
        remaining = None if self.total is None else self.total - self.skipped - done
        rate = self.counts[RecordStatus.OK.value] / elapsed
        return {
            "ok": self.counts[RecordStatus.OK.value],
            "failed": self.counts[RecordStatus.ERROR.value]
            + self.counts[RecordStatus.TIMEOUT.value],
            "cancelled": self.counts[RecordStatus.CANCELLED.value],
            "retrying": len(self._retrying),
            "in_flight": len(self.in_flight),
            "skipped": self.skipped,
            "total": self.total,
            "remaining": remaining,
            "rate": round(rate, 3),
            "eta_seconds": round(remaining / rate, 1) if remaining and rate > 0 else None,
            "elapsed": round(elapsed, 3),
            "paused": self.pause_text(),
            "note": self.last_note,
        }

    def _emit(self, *, force: bool = False) -> None:
        if self._bar is not None:
            snap = self.snapshot()
            line = (
                f"ok {snap['ok']} failed {snap['failed']} retrying {snap['retrying']} "
                f"in flight {snap['in_flight']}"
            )
            extra = snap["paused"] or snap["note"]
            self._bar.set_postfix_str(f"{line} | {extra}" if extra else line, refresh=False)
        elif self.mode == "json":
            now = time.monotonic()
            if force or now - self._last_json >= self._json_interval:
                self._last_json = now
                self._json({"event": "progress", **self.snapshot()})

    def _json(self, payload: dict[str, Any]) -> None:
        self._stream.write(json.dumps(payload, separators=(",", ":")) + "\n")
        self._stream.flush()


def _auto_tqdm() -> type[tqdm[Any]]:
    from tqdm.auto import tqdm as auto

    return auto
