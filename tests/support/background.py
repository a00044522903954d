"""`runner.run` in a thread of its own, for a test that acts while the run goes (a
browser's sync API, an app killed and restarted)."""

from __future__ import annotations

import threading
from pathlib import Path

from runner.run import RunOptions, RunSummary, run

__all__ = ["RunInThread"]


class RunInThread:
    """`run()` in a thread of its own; `join()` returns its summary or raises its error."""

    def __init__(self, manifest: Path, options: RunOptions) -> None:
        self.summary: RunSummary | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(manifest, options))
        self._thread.start()

    def _run(self, manifest: Path, options: RunOptions) -> None:
        try:
            self.summary = run(manifest, options)
        except BaseException as exc:  # handed to the test
            self.error = exc

    def join(self) -> RunSummary:
        self._thread.join(timeout=120)
        if self.error is not None:
            raise self.error
        assert self.summary is not None
        return self.summary
