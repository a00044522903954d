"""The Hugging Face side of a run's replicas: whose quota each uses, how to read its
stage, what its hardware costs, and what becomes of paid copies when the run ends.

* Accounts: the ZeroGPU quota belongs to the token's account *on ZeroGPU hardware*.
  Replicas whose Space runs on ZeroGPU (read from its runtime) and are called with the
  token spend it, so they share an account key (a fingerprint of the token, never the
  token) and pause together when it is spent. A paid copy, a URL, a local or Ray copy
  never spends it: it has no account and keeps taking rows through that pause.
* Duplicates: a copy paused by an earlier run (stage PAUSED) is restarted, then waited
  for. When the run ends, however it ends, copies on paid hardware with `after: pause`
  (the default) are paused, so nothing goes on billing; `sleep` leaves them to sleep
  after their `sleep_timeout`, `keep` leaves them running.
* Cost: unit prices come from the Hub's hardware list (`GET /api/spaces/hardware`);
  a copy costs its price times the time it was up during this run (from the moment it
  was asked to run until it was paused, or the run ended). Only `duplicate:` copies are
  counted: a `space:` replica is billed to its owner.

    fleet = Fleet(token=token, endpoint=hub)
    client = await fleet.open_duplicate(spec, target, options)
    ...
    await fleet.release()      # pause paid copies; idempotent
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from jobs import (
    AsyncClient,
    JobsError,
    duplicate_space,
    hardware_prices,
    hf_token_from_env,
    pause_space,
    restart_space,
    space_runtime,
    zerogpu_quota,
)

from ..manifest import DuplicateReplica
from ..scheduling import QuotaLookup
from ._elastic import ElasticGroup

__all__ = ["Fleet", "ReplicaCost"]

log = logging.getLogger("runner")

_ZEROGPU = "zero-a10g"
_FREE = frozenset({"cpu-basic", _ZEROGPU})
#: Longest wait for the Hub to pause one copy at the end of a run.
_PAUSE_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplicaCost:
    """What one Space replica ran on during this run, and what that cost (None: unknown,
    or not billed to the user)."""

    hardware: str | None
    up_seconds: float | None
    cost_usd: float | None
    #: "paused", "sleeping after its sleep time", "left running", or None (not ours).
    after: str | None = None


@dataclass(slots=True)
class _Copy:
    space_id: str
    hardware: str | None
    ours: bool
    after: str = "keep"
    #: What is done when it is stuck: "restart", "factory_reboot" or "leave".
    stuck: str = "leave"
    up_since: float | None = None
    up_until: float | None = None
    ended: str | None = None
    #: Seconds it was up in earlier spans of this run (an elastic copy paused mid-run
    #: and started again is billed for each span).
    banked: float = 0.0

    def up_seconds(self, now: float) -> float | None:
        if self.up_since is None:
            return self.banked if self.banked else None
        return self.banked + (self.up_until or now) - self.up_since

    @property
    def paid(self) -> bool:
        return self.ours and self.hardware is not None and self.hardware not in _FREE


@dataclass(slots=True)
class Fleet:
    """See the module docstring. Holds no connection; every Hub call is made when asked."""

    token: str | None
    endpoint: str | None = None
    on_message: Callable[[str], None] = print
    clock: Callable[[], float] = time.monotonic
    _copies: dict[str, _Copy] = field(default_factory=dict)
    _prices: dict[str, float] | None = None
    _released: bool = False
    #: Elastic `duplicate:` entries (`count: {min, max}`), for the run's fleet control.
    groups: list[ElasticGroup] = field(default_factory=list)
    #: How to kill a `local:` copy and start it again (one that is stuck), by replica
    #: name: copies spacerun runs itself are the user's to restart.
    local_restarts: dict[str, Callable[[], Awaitable[AsyncClient]]] = field(default_factory=dict)

    @classmethod
    def of(
        cls, token: str | None, *, endpoint: str | None, on_message: Callable[[str], None]
    ) -> Fleet:
        """The fleet of a run whose manifest gives `token` (None: the environment's)."""
        return cls(token=hf_token_from_env(token), endpoint=endpoint, on_message=on_message)

    @property
    def account(self) -> str:
        """The account key of this token's replicas."""
        if not self.token:
            return "hf:anonymous"
        return "hf:" + hashlib.sha256(self.token.encode()).hexdigest()[:12]

    def quota_account(self, name: str) -> str | None:
        """The account whose ZeroGPU quota the replica `name` (opened here) spends: this
        token's when its Space runs on ZeroGPU, None on any other hardware (a paid copy
        is billed by the hour and never refused for the quota) or when unknown."""
        copy = self._copies.get(name)
        return self.account if copy is not None and copy.hardware == _ZEROGPU else None

    def space_of(self, replica_name: str) -> str:
        """The Space id behind a replica opened here."""
        return self._copies[replica_name].space_id

    def stage_reader(self, space_id: str) -> Callable[[], Awaitable[str]]:
        async def stage() -> str:
            runtime = await space_runtime(space_id, token=self.token, endpoint=self.endpoint)
            return runtime.stage

        return stage

    def quota_lookups(self) -> Mapping[str, QuotaLookup]:
        """For the pauses: when this token's quota resets, from the Hub."""
        if not self.token:
            return {}

        async def resets_in() -> float | None:
            quota = await zerogpu_quota(token=self.token, endpoint=self.endpoint)
            return quota.resets_in() if quota is not None else None

        return {self.account: resets_in}

    # -- opening ----------------------------------------------------------------------

    async def open_space(self, name: str, space_id: str, options: dict[str, Any]) -> AsyncClient:
        """Connect to a Space used as it is (read its hardware, for the summary)."""
        client = await AsyncClient.connect(space_id, **options)
        hardware = await self._hardware(space_id)
        self._copies[name] = _Copy(space_id=space_id, hardware=hardware, ours=False)
        return client

    async def open_duplicate(
        self, name: str, spec: DuplicateReplica, target: str, options: dict[str, Any]
    ) -> AsyncClient:
        """Make or reuse the copy `target`, restart it if an earlier run paused it, wait
        until it runs, and connect."""
        space_id = await duplicate_space(
            spec.space,
            target,
            token=self.token,
            endpoint=self.endpoint,
            private=spec.private,
            hardware=spec.hardware,
            sleep_timeout=_minutes(spec.sleep_timeout),
        )
        earlier = self._copies.get(name)
        copy = self._copies[name] = _Copy(
            space_id=space_id, hardware=spec.hardware, ours=True, after=spec.after, stuck=spec.stuck
        )
        if earlier is not None:  # started again after a pause in this run
            copy.banked = earlier.up_seconds(self.clock()) or 0.0
        copy.up_since = self.clock()  # billed from here: building and starting count
        runtime = await space_runtime(space_id, token=self.token, endpoint=self.endpoint)
        copy.hardware = runtime.requested_hardware or runtime.hardware or spec.hardware
        if runtime.stage == "PAUSED":
            self.on_message(f"{space_id} is paused (by an earlier run?); restarting it")
            await restart_space(space_id, token=self.token, endpoint=self.endpoint)
        return await AsyncClient.connect(space_id, **options)

    async def report_quota(self, *, zerogpu: bool) -> None:
        """Before the first job: what is left of the token's ZeroGPU quota."""
        if not zerogpu or not self.token:
            return
        try:
            quota = await zerogpu_quota(token=self.token, endpoint=self.endpoint)
        except JobsError as exc:
            log.info("could not read the ZeroGPU quota: %s", exc)
            return
        if quota is None:
            return
        resets = (
            f", resets at {quota.resets_at.astimezone():%H:%M}"
            if quota.resets_at is not None
            else ""
        )
        self.on_message(
            f"ZeroGPU quota of this token: {quota.remaining:.0f} s of {quota.base:.0f} s of GPU "
            f"time left{resets}"
        )

    def uses_zerogpu(self) -> bool:
        return any(c.hardware == _ZEROGPU for c in self._copies.values())

    # -- cost -------------------------------------------------------------------------

    async def load_prices(self) -> None:
        """Read the Hub's price list once, if any copy of ours runs on paid hardware."""
        later = any(g.spec.hardware not in _FREE for g in self.groups)
        if self._prices is not None or not (later or any(c.paid for c in self._copies.values())):
            return
        try:
            self._prices = await hardware_prices(self.endpoint)
        except JobsError as exc:
            self._prices = {}
            self.on_message(f"could not read the Hub's hardware prices ({exc}); cost unknown")

    def burn_rate(self) -> float:
        """Dollars per second the copies of ours that are up cost now."""
        now = self.clock()
        return sum(
            self._price(c) or 0.0
            for c in self._copies.values()
            if c.paid and c.up_since is not None and (c.up_until is None or c.up_until > now)
        )

    def unpriced(self) -> list[str]:
        """Paid copies of ours whose price is unknown (a budget cannot count them)."""
        return [c.space_id for c in self._copies.values() if c.paid and self._price(c) is None]

    def spent(self) -> float:
        return sum(cost.cost_usd or 0.0 for cost in self.costs().values())

    def costs(self) -> dict[str, ReplicaCost]:
        now = self.clock()
        out = {}
        for name, copy in self._copies.items():
            up = copy.up_seconds(now) if copy.ours else None
            price = self._price(copy) if copy.ours else None
            cost = None if up is None or price is None else round(price * up, 6)
            out[name] = ReplicaCost(
                hardware=copy.hardware, up_seconds=up, cost_usd=cost, after=copy.ended
            )
        return out

    def price_of(self, hardware: str | None) -> float | None:
        """Dollars per second of a copy of ours on `hardware` (None: unknown)."""
        if hardware in _FREE:
            return 0.0
        if self._prices is None or hardware is None:
            return None
        return self._prices.get(hardware)

    def price_of_copy(self, name: str) -> float | None:
        """Dollars per second the copy `name` costs while up (0 when it is not ours)."""
        copy = self._copies.get(name)
        if copy is None:
            return None
        return self._price(copy) if copy.ours else 0.0

    def _price(self, copy: _Copy) -> float | None:
        if copy.hardware in _FREE:
            return 0.0
        if self._prices is None or copy.hardware is None:
            return None
        return self._prices.get(copy.hardware)

    # -- mid-run ----------------------------------------------------------------------

    def may_restart(self, name: str) -> bool:
        """The replica `name` is a copy in the user's account that may be restarted when
        stuck (never a Space that is not the user's)."""
        copy = self._copies.get(name)
        return copy is not None and copy.ours and copy.stuck != "leave"

    async def restart_copy(self, name: str) -> None:
        """Restart the copy `name` through the Hub (a stuck app), as a factory reboot if
        its `stuck:` says so; raises JobsError."""
        copy = self._copies[name]
        assert copy.ours, "only a copy of ours is restarted"
        await restart_space(
            copy.space_id,
            token=self.token,
            endpoint=self.endpoint,
            factory_reboot=copy.stuck == "factory_reboot",
        )

    async def pause_copy(self, name: str) -> bool:
        """Pause the copy `name` now (an elastic copy with nothing left to do), so that it
        stops billing; the next `open_duplicate` of it restarts it. True once paused."""
        copy = self._copies.get(name)
        if copy is None or not copy.ours or copy.up_since is None:
            return False
        await self._end(copy, force=True)
        if copy.ended != "paused":
            return False
        copy.banked = copy.up_seconds(self.clock()) or 0.0
        copy.up_since = copy.up_until = None
        return True

    # -- the end ----------------------------------------------------------------------

    async def release(self) -> None:
        """Pause the paid copies whose `after` is pause (shielded: also on Ctrl-C)."""
        if self._released:
            return
        self._released = True
        with anyio.CancelScope(shield=True):
            for copy in self._copies.values():
                if copy.ours and copy.up_since is not None:
                    await self._end(copy)

    async def _end(self, copy: _Copy, *, force: bool = False) -> None:
        """Pause `copy` as its `after` says (`force`: whatever it says, mid-run)."""
        if not force and (not copy.paid or copy.after == "keep"):
            copy.ended = "left running" if copy.paid else None
            copy.up_until = self.clock()
            return
        if copy.after == "sleep" and not force:
            copy.ended = "left to sleep after its sleep time"
            copy.up_until = self.clock()
            return
        try:
            with anyio.fail_after(_PAUSE_TIMEOUT):
                await pause_space(copy.space_id, token=self.token, endpoint=self.endpoint)
        except (JobsError, TimeoutError) as exc:
            copy.ended = "left running: pausing failed"
            self.on_message(
                f"could not pause {copy.space_id} ({exc}); it is still billed: pause it on its "
                "settings page"
            )
        else:
            copy.ended = "paused"
            self.on_message(f"{copy.space_id} ({copy.hardware}) paused: it no longer bills")
        copy.up_until = self.clock()

    async def _hardware(self, space_id: str) -> str | None:
        try:
            runtime = await space_runtime(space_id, token=self.token, endpoint=self.endpoint)
        except JobsError:
            return None
        return runtime.hardware or runtime.requested_hardware


def _minutes(seconds: float | None) -> int:
    # The manifest's duration is in seconds; a Space's sleep time is in minutes.
    return math.ceil(seconds / 60) if seconds is not None else 5
