"""`run.notify`: tell the webhooks when the run needs someone.

Four messages, each sent once for what it is about:

- **failures**: at least `failure_share` of the last `failure_window` finished rows
  failed (told again only once the share fell to half of it and rose again);
- **paused**: the run could not send anything for `pause_after` (a ZeroGPU quota, every
  replica down), once per pause;
- **budget**: `run.budget` stopped the run;
- **end**: counts, wall time, cost, and the command that resumes it when incomplete.

The run hears none of this: outcomes are counted synchronously, and the messages are
posted by `watch` (a task of the run's task group) and `finish` (once the summary is
written). A webhook that fails is logged by `post_all` and forgotten.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta

import anyio
import httpx

from ..manifest import NotifySpec, Webhook
from ..scheduling import Outcome
from ..store import RecordStatus
from ._summary import RunSummary
from ._webhook import Notification, UrlMask, client, post_all

__all__ = ["Notifier"]

log = logging.getLogger("runner")

Post = Callable[[httpx.AsyncClient, Sequence[Webhook], Notification], Awaitable[int]]
#: How often `watch` looks at the pauses and the budget.
POLL = 0.5
#: The longest the run's end waits for the webhooks to take the last messages.
FINISH_TIMEOUT = 30.0
_FAILED = frozenset({RecordStatus.ERROR, RecordStatus.TIMEOUT})


class Notifier:
    """The messages of one run to the webhooks of `spec`."""

    def __init__(
        self,
        spec: NotifySpec,
        *,
        run: str,
        post: Post = post_all,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self.run = run
        self._post = post
        self._clock = clock
        self._window: deque[bool] = deque(maxlen=spec.failure_window)
        self._spiking = False
        self._paused_since: float | None = None
        self._pause_told = False
        self._budget_told = False
        self._pending: list[Notification] = []
        self._client: httpx.AsyncClient | None = None
        self._mask = UrlMask(spec.webhooks)
        #: The events posted so far, in order.
        self.sent: list[str] = []

    # -- what happens ------------------------------------------------------------------

    def outcome(self, outcome: Outcome) -> None:
        if outcome.status is RecordStatus.CANCELLED:
            return  # the run stopping, not the app failing
        self._window.append(outcome.status in _FAILED)
        if len(self._window) < self.spec.failure_window:
            return
        failed = sum(self._window)
        share = failed / len(self._window)
        if share >= self.spec.failure_share and not self._spiking:
            self._spiking = True
            cause = outcome.causes[-1] if outcome.causes else outcome.status.value
            cause = cause if len(cause) <= 200 else cause[:199] + "…"
            self._pending.append(
                Notification(
                    "failures",
                    self.run,
                    f"{self.run}: {failed} of the last {len(self._window)} rows failed "
                    f"({share:.0%}); the latest: {cause}",
                    {"failed": failed, "window": len(self._window), "share": round(share, 3)},
                )
            )
        elif share <= self.spec.failure_share / 2:
            self._spiking = False

    def check(self, paused: str | None, halted: str | None) -> None:
        """Look at the run now: `paused` says why nothing can be sent (None: it can),
        `halted` why the run stopped itself (the scheduler's `halted_by`)."""
        now = self._clock()
        if paused is None:
            self._paused_since, self._pause_told = None, False
        elif self._paused_since is None:
            self._paused_since = now
        if (
            paused is not None
            and self._paused_since is not None
            and not self._pause_told
            and now - self._paused_since >= self.spec.pause_after
        ):
            self._pause_told = True
            waited = timedelta(seconds=round(now - self._paused_since))
            self._pending.append(
                Notification("paused", self.run, f"{self.run}: nothing sent for {waited}: {paused}")
            )
        if halted is not None and halted.startswith("budget") and not self._budget_told:
            self._budget_told = True
            self._pending.append(Notification("budget", self.run, f"{self.run}: stopped. {halted}"))

    # -- sending -----------------------------------------------------------------------

    async def watch(
        self, paused: Callable[[], str | None], halted: Callable[[], str | None]
    ) -> None:
        """Check and post every `POLL` seconds, until cancelled."""
        while True:
            self.check(paused(), halted())
            # A message half posted is finished, not posted twice by `finish`.
            with anyio.CancelScope(shield=True):
                await self._flush()
            await anyio.sleep(POLL)

    async def finish(self, summary: RunSummary | None) -> None:
        """Post what is pending and the end message; close the client. Never raises."""
        if summary is not None:
            # The budget may have stopped the run after `watch` last looked.
            self.check(None, summary.halted_by)
            self._pending.append(end_message(summary))
        with anyio.CancelScope(shield=True), anyio.move_on_after(FINISH_TIMEOUT):
            try:
                await self._flush()
            finally:
                if self._client is not None:
                    await self._client.aclose()
                    self._client = None
                    self._mask.remove()

    async def _flush(self) -> None:
        while self._pending:
            note = self._pending[0]
            if self._client is None:
                self._client = client()
                self._mask.install()
            try:
                await self._post(self._client, self.spec.webhooks, note)
            except Exception as exc:  # never the run's failure
                log.warning(
                    "notify: the %r message was not sent: %s", note.event, type(exc).__name__
                )
            del self._pending[0]
            self.sent.append(note.event)


def end_message(summary: RunSummary) -> Notification:
    this = summary.this_run
    wall = timedelta(seconds=round(summary.wall_seconds))
    text = (
        f"{summary.name} ended: {this['ok']} ok, {this['error']} failed, {this['timeout']} "
        f"timed out, {this['cancelled']} cancelled in {wall}"
    )
    if summary.cost_usd is not None:
        text += f"; cost ${summary.cost_usd:.2f}"
    if summary.total is not None:
        text += f". {summary.total - (summary.remaining or 0)} of {summary.total} ok in the folder"
    why = summary.stopped_by or summary.halted_by
    if why:
        text += f". Stopped: {why}"
    if not summary.complete and summary.resume_command:
        text += f". Incomplete; resume with: {summary.resume_command}"
    return Notification("end", summary.name, text, summary.to_dict())
