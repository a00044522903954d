"""`output.push_to_hub` during and at the end of a run (`runner.push` does the pushing).

While the run goes on, a push is made every `every:` new results or minutes, in a worker
thread, one at a time; the run's end makes the last one. A push that fails is said and
left to the next one (or to `spacerun push RUN_DIR`): the results are safe in the run
folder, and the push state makes the next push add exactly what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

from ..manifest import Manifest
from ..push import PushReport, push_results

__all__ = ["PushWatch"]

log = logging.getLogger(__name__)


class PushWatch:
    def __init__(
        self,
        manifest: Manifest,
        *,
        token: str | None,
        endpoint: str | None,
        done: Callable[[], int],
        on_message: Callable[[str], None],
        secret_values: list[str],
    ) -> None:
        spec = manifest.output.push_to_hub
        assert spec is not None
        self.spec, self.folder = spec, manifest.output.dir
        self.token, self.endpoint = token, endpoint
        self.done, self.on_message = done, on_message
        self.secret_values = secret_values
        self._lock = anyio.Lock()

    async def run(self) -> None:
        """Push every `every:` results or seconds until cancelled."""
        if self.spec.every_rows is None and self.spec.every_seconds is None:
            return
        pushed_at, pushed_rows = time.monotonic(), self.done()
        while True:
            await anyio.sleep(1.0)
            rows, now = self.done(), time.monotonic()
            by_rows = (
                self.spec.every_rows is not None and rows - pushed_rows >= self.spec.every_rows
            )
            by_time = (
                self.spec.every_seconds is not None
                and now - pushed_at >= self.spec.every_seconds
                and rows > pushed_rows
            )
            if by_rows or by_time:
                await self.push()
                pushed_at, pushed_rows = time.monotonic(), rows

    async def push(self) -> PushReport | None:
        async with self._lock:
            try:
                report = await anyio.to_thread.run_sync(self._push)
            except Exception as exc:
                log.debug("push to %s failed", self.spec.repo, exc_info=True)
                self.on_message(
                    f"push to {self.spec.repo} failed ({type(exc).__name__}: {exc}); the next "
                    f"push (or `spacerun push {self.folder} {self.spec.repo}`) adds what is missing"
                )
                return None
        if report.commit is not None:
            self.on_message(
                f"pushed {report.rows_added} new and {report.rows_replaced} updated results "
                f"to {self.spec.repo} ({report.bytes:,} bytes)"
            )
        return report

    def _push(self) -> PushReport:
        return push_results(
            self.folder,
            self.spec.repo,
            token=self.token,
            endpoint=self.endpoint,
            private=self.spec.private,
            columns=self.spec.columns,
            secret_values=self.secret_values,
        )
