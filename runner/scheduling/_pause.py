"""Account-level pauses: when one Space says the account's ZeroGPU quota is spent, every
replica reached with the same account (the same HF token) waits until the quota resets.

A replica's account is `Replica.account`: launch sets it for the replicas that spend
the token's quota (Spaces on ZeroGPU hardware). Replicas with no account (paid copies,
URLs, local copies) are their own, and pause only when refused themselves. The wait
comes from the error (`retry_after`, parsed from "Try again in 0:09:48"), else from the
account's quota (`resetsAt` of the Hub's quota route, through a lookup launch provides),
else a back-off that doubles from a minute.
While paused, the replicas take no job (their concurrency windows are paused until the
reset); the rows wait in the pool, pending, and the attempt does not count as a retry.
A wait longer than `max_wait` raises `RunHalted`: the scheduler stops the run as on
Ctrl-C, resumably, and says when to resume.

    pauses = AccountPauses(pool.replicas, max_wait=3600)
    await pauses.pause(replica, quota_error)      # or raises RunHalted
    pauses.describe()   # 'paused: ZeroGPU quota until 14:32 (in 0:09:48)'
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import anyio

from jobs import JobsError, QuotaExceeded

from ..errors import ExitStatus, RunnerError
from ._replica import Replica
from ._throttle import Clock

__all__ = ["AccountPauses", "PauseRecord", "QuotaLookup", "RunHalted", "format_pause"]

log = logging.getLogger("runner")

#: Seconds until the account's quota resets, from the Hub (None: it does not say).
QuotaLookup = Callable[[], Awaitable[float | None]]

_FIRST_UNKNOWN_WAIT = 60.0
_MAX_UNKNOWN_WAIT = 3600.0
_LOOKUP_TIMEOUT = 20.0


class RunHalted(RunnerError):
    """The run stopped by itself before the end, resumably (everything is recorded): a
    pause longer than `run.max_wait`, or the budget. Exits as an interrupted run does."""

    exit_status = ExitStatus.INTERRUPTED


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseRecord:
    """One account-level pause: why, which replicas, from when until when (epoch seconds)."""

    reason: str
    replicas: tuple[str, ...]
    started_at: float
    until: float

    def to_dict(self) -> dict[str, object]:
        return {
            "reason": self.reason,
            "replicas": list(self.replicas),
            "started_at": datetime.fromtimestamp(self.started_at).isoformat(timespec="seconds"),
            "until": datetime.fromtimestamp(self.until).isoformat(timespec="seconds"),
            "seconds": round(self.until - self.started_at, 1),
        }


def format_pause(reason: str, until: float, now: float) -> str:
    """`paused: ZeroGPU quota until 14:32 (in 0:09:48)`; times are local, epoch seconds in."""
    left = timedelta(seconds=max(0, round(until - now)))
    return f"paused: {reason} until {datetime.fromtimestamp(until):%H:%M} (in {left})"


@dataclass(slots=True)
class _Active:
    record: PauseRecord
    until_clock: float


class AccountPauses:
    """The account-level pauses of one run; see the module docstring."""

    def __init__(
        self,
        replicas: Sequence[Replica],
        *,
        max_wait: float | None = None,
        lookups: Mapping[str, QuotaLookup] | None = None,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        self._replicas = list(replicas)
        self._max_wait = max_wait
        self._lookups = dict(lookups or {})
        self._clock = clock
        self._wall = wall
        self._message = on_message or (lambda text: log.info("%s", text))
        self._active: dict[str, _Active] = {}
        self._unknown_streak: dict[str, int] = {}
        self.records: list[PauseRecord] = []

    def __repr__(self) -> str:
        return f"<AccountPauses active={len(self._active)} past={len(self.records)}>"

    async def pause(self, replica: Replica, error: QuotaExceeded) -> float:
        """Pause every replica of `replica`'s account until its quota resets; return the
        wait in seconds. Raises `RunHalted` when it is longer than `max_wait`."""
        account = _account_of(replica)
        wait = error.retry_after
        if wait is None and (active := self._live(account)) is not None:
            wait = active.until_clock - self._clock()  # the pause already under way
        if wait is None:
            wait = await self._lookup(account)
        if wait is None:
            wait = self._backoff(account)
        else:
            self._unknown_streak.pop(account, None)
        self._hold(account, wait, reason=_reason(error))
        if self._max_wait is not None and wait > self._max_wait:
            until = self._wall() + wait
            raise RunHalted(
                f"{format_pause(_reason(error), until, self._wall())}, longer than run.max_wait "
                f"({timedelta(seconds=round(self._max_wait))}); stopped. Everything is recorded: "
                f"run the same command again after {datetime.fromtimestamp(until):%Y-%m-%d %H:%M} "
                "to resume (or raise run.max_wait)."
            )
        return wait

    def describe(self) -> str | None:
        """The pause to show now (the one that ends last), or None."""
        now = self._clock()
        live = [a for a in self._active.values() if a.until_clock > now]
        if not live:
            return None
        latest = max(live, key=lambda a: a.until_clock)
        return format_pause(latest.record.reason, latest.record.until, self._wall())

    def _hold(self, account: str, wait: float, *, reason: str) -> None:
        now, wall_now = self._clock(), self._wall()
        until_clock = now + wait
        members = [r for r in self._replicas if _account_of(r) == account]
        for member in members:
            member.limit.paused_until = max(member.limit.paused_until, until_clock)
        active = self._live(account)
        if active is not None:
            if until_clock > active.until_clock + 1:  # extended: one record for the pause
                index = self.records.index(active.record)
                active.record = self.records[index] = PauseRecord(
                    reason=reason,
                    replicas=active.record.replicas,
                    started_at=active.record.started_at,
                    until=wall_now + wait,
                )
                active.until_clock = until_clock
            return  # the same pause, reported by another row
        record = PauseRecord(
            reason=reason,
            replicas=tuple(r.name for r in members),
            started_at=wall_now,
            until=wall_now + wait,
        )
        self.records.append(record)
        self._active[account] = _Active(record=record, until_clock=until_clock)
        self._message(
            f"{format_pause(reason, record.until, wall_now)}: {', '.join(record.replicas)} "
            "take no jobs until then; their rows wait, nothing is marked failed"
        )

    def _live(self, account: str) -> _Active | None:
        active = self._active.get(account)
        return active if active is not None and active.until_clock > self._clock() else None

    async def _lookup(self, account: str) -> float | None:
        lookup = self._lookups.get(account)
        if lookup is None:
            return None
        try:
            with anyio.fail_after(_LOOKUP_TIMEOUT):
                return await lookup()
        except (JobsError, TimeoutError) as exc:
            log.info("could not read the ZeroGPU quota: %s", exc)
            return None

    def _backoff(self, account: str) -> float:
        streak = self._unknown_streak.get(account, 0)
        self._unknown_streak[account] = streak + 1
        return float(min(_MAX_UNKNOWN_WAIT, _FIRST_UNKNOWN_WAIT * 2.0**streak))


def _account_of(replica: Replica) -> str:
    return replica.account or f"replica:{replica.name}"


def _reason(error: QuotaExceeded) -> str:
    return "ZeroGPU runs limit" if error.kind == "runs_limit" else "ZeroGPU quota"
