"""One replica the pool sends jobs to, and where it stands: a small state machine.

```
            connect answers              failures in a row
  PENDING ─────────────────────▶ UP ◀──────────────────▶ DOWN
     │  ▲ connect fails:             probe answers (ping)   │ ▲ probe fails:
     │  └─ probed again later                               │ └─ probed again later
     │
     └──────────▶ REFUSED   its API differs from the run's, or it can never answer
                            (a wrong password, not a Gradio app): never used again
```

A DOWN replica may come back at another address (a Ray actor restarted on another
node): its `revive` then returns a client for the new URL, and `move_to` swaps it in
before the probe pings it there. The jobs that were in flight on the old address have
failed and been retried on other replicas meanwhile; only later attempts use the new one.

An UP replica may also be *unchecked*: a job there lost its connection or got a 5xx, or
it sat idle, so it may have restarted as another app. It takes no job until the pool has
read its API again (`suspect`, then `checked_again`); see `ReplicaPool`.

A replica made with a connected `client` starts UP; one made with `connect` only
starts PENDING, and the pool connects it: at the start of a run, then each time it
is probed. Probes are spaced by `probe_interval`, doubling after each failed probe up
to the pool's ceiling, and back to the first interval only once a job succeeds there
(so a replica that answers probes but fails every job is not retried in a tight loop).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import Enum

from jobs import AsyncClient

from ._pace import Pace
from ._throttle import AdaptiveLimit

__all__ = ["Connect", "Replica", "ReplicaState", "ReplicaStats", "Revive"]

#: Opens the replica's client (connects, reads its API); raises when it does not answer.
Connect = Callable[[], Awaitable[AsyncClient]]
#: Brings a DOWN replica back (restarts a local copy, asks a Ray actor where its app runs
#: now); returns a client when the app answers at a new address, None when it stays put.
Revive = Callable[[], Awaitable[AsyncClient | None]]


class ReplicaState(str, Enum):
    PENDING = "pending"
    """Not connected yet: it did not answer when the run started (or has not been tried)."""
    UP = "up"
    """In rotation: jobs go to it."""
    DOWN = "down"
    """Taken out of rotation after failures in a row; probed until it answers."""
    REFUSED = "refused"
    """Never used: its API differs from the run's, or it cannot answer at all."""


@dataclass(slots=True)
class ReplicaStats:
    submitted: int = 0
    ok: int = 0
    failed: int = 0
    overloads: int = 0
    ejections: int = 0
    busy_seconds: float = 0.0
    #: Copies of a straggler sent here (`run.hedge`), and app seconds the copies that
    #: lost cost here (a running plain function runs to its end; a queued one, nothing).
    hedges: int = 0
    hedge_seconds: float = 0.0


class Replica:
    """One app the pool sends jobs to (see the module docstring for its states)."""

    __slots__ = (
        "_client",
        "_connect",
        "_first_interval",
        "account",
        "checked",
        "down_until",
        "failures_in_row",
        "gpu",
        "in_flight",
        "last_used",
        "limit",
        "name",
        "pace",
        "probe_interval",
        "probing",
        "queued_ahead",
        "reason",
        "refusal",
        "retired",
        "revive",
        "stage",
        "state",
        "stats",
        "suspicions",
        "tried",
    )

    def __init__(
        self,
        *,
        name: str,
        limit: AdaptiveLimit,
        client: AsyncClient | None = None,
        connect: Connect | None = None,
        revive: Revive | None = None,
        probe_interval: float = 2.0,
        gpu: str | None = None,
        account: str | None = None,
        stage: Callable[[], Awaitable[str]] | None = None,
    ) -> None:
        if client is None and connect is None:
            raise ValueError("a replica needs a connected client or a way to connect")
        self.name = name
        self.limit = limit
        self._client = client
        self._connect = connect
        #: Brings a dead replica back (`Revive`); None when nothing can be done.
        self.revive = revive
        #: The GPU (CUDA_VISIBLE_DEVICES) of a local copy, for the summary; None elsewhere.
        self.gpu = gpu
        #: Who pays for its GPU quota (an HF token's account): replicas of one account
        #: pause together. None: the replica is its own account.
        self.account = account
        #: Reads the Space's runtime stage (space and duplicate replicas); None otherwise.
        self.stage = stage
        #: Why it is out of rotation for good (its Space crashed, was paused, ...), if it is.
        self.retired: str | None = None
        self.state = ReplicaState.UP if client is not None else ReplicaState.PENDING
        #: Why it is not up (the last failure), for messages; "" when up.
        self.reason = ""
        #: The error that refused it, when it is REFUSED for an error.
        self.refusal: BaseException | None = None
        #: When it is probed next (PENDING, DOWN); None when no probe is due.
        self.down_until: float | None = None
        self._first_interval = probe_interval
        self.probe_interval = probe_interval
        #: A probe (or a connection attempt) is under way.
        self.probing = False
        #: It was tried at least once (connected, or an attempt ended).
        self.tried = client is not None
        self.in_flight = 0
        #: Its API was compared with the run's since it last (re)connected; a replica
        #: whose connection broke, or that sat idle, may have restarted as another app
        #: and takes no job until the pool has read its API again.
        self.checked = True
        #: When a job last started or ended there (the pool's clock).
        self.last_used = 0.0
        #: How many times it was suspected of a restart: a check that began before the
        #: latest suspicion does not count.
        self.suspicions = 0
        self.queued_ahead = 0
        self.failures_in_row = 0
        self.stats = ReplicaStats()
        #: Its measured run time and gap, and the jobs kept waiting in its queue (the
        #: pool sets how many at most).
        self.pace = Pace(0)

    def __repr__(self) -> str:
        return (
            f"<Replica {self.name} {self.state.value} "
            f"in_flight={self.in_flight}/{self.limit.allowed}>"
        )

    @property
    def client(self) -> AsyncClient:
        if self._client is None:
            raise RuntimeError(f"replica {self.name} is not connected ({self.state.value})")
        return self._client

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def healthy(self) -> bool:
        return self.state is ReplicaState.UP

    def free(self, now: float) -> bool:
        # Looked at for every replica each time a job wants a slot or one ends: spelled
        # out rather than through `healthy`, `allowed`, `depth` and `paused`.
        limit = self.limit
        return (
            self.state is ReplicaState.UP
            and self.checked
            and self.in_flight < limit.allowed + self.pace.depth
            and limit.paused_until <= now
        )

    def load(self) -> float:
        return (self.in_flight + self.queued_ahead) / self.limit.allowed

    async def open_client(self) -> AsyncClient:
        """Connect (a PENDING replica); raises what the connection raised."""
        assert self._connect is not None, "a replica made with a client is never pending"
        return await self._connect()

    # -- transitions ------------------------------------------------------------------

    def connect_to(self, client: AsyncClient) -> None:
        """PENDING -> UP: it answered and its API fits."""
        self._client = client
        self._restore()

    def eject(self, now: float, reason: str) -> None:
        """UP -> DOWN: probed first after `probe_interval`."""
        self.state = ReplicaState.DOWN
        self.reason = reason
        self.stats.ejections += 1
        self.down_until = now + self.probe_interval

    def probe_failed(self, now: float, reason: str, ceiling: float) -> None:
        """Stays PENDING or DOWN; the next probe comes after twice the interval (after
        the first interval when this was the first attempt to connect)."""
        self.reason = reason
        if self.tried:
            self.probe_interval = min(ceiling, self.probe_interval * 2)
        self.down_until = now + self.probe_interval

    def move_to(self, client: AsyncClient) -> None:
        """Stays DOWN, at a new address: later attempts go through `client` (probed
        there next). The old client is left to whoever opened it."""
        if self.state is not ReplicaState.DOWN:
            raise RuntimeError(f"replica {self.name} moves only while down, not {self.state.value}")
        self._client = client
        self.queued_ahead = 0

    def come_back(self) -> None:
        """DOWN -> UP: a probe answered."""
        self._restore()

    def refuse(self, reason: str, error: BaseException | None = None) -> None:
        """-> REFUSED, for good."""
        self.state = ReplicaState.REFUSED
        self.reason = reason
        self.refusal = error
        self.down_until = None

    def suspect(self, now: float) -> None:
        """Stays UP, unchecked: its API is read again (probed at once) before a job goes."""
        self.checked = False
        self.suspicions += 1
        self.down_until = now

    def checked_again(self) -> None:
        """An unchecked UP replica's API fits: jobs go to it again."""
        self.checked = True
        self.down_until = None
        self.reason = ""

    def job_succeeded(self) -> None:
        self.failures_in_row = 0
        self.probe_interval = self._first_interval

    def _restore(self) -> None:
        self.state = ReplicaState.UP
        self.checked = True
        self.reason = ""
        self.down_until = None
        self.failures_in_row = 0
