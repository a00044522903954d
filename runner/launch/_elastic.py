"""Elastic copies (`duplicate:` with `count: {min: N, max: M}`): the replicas of all `M`
copies are made up front, so the scheduler's window has room for them; those past `N`
start parked (out of rotation, never connected) until the run's fleet control
(`runner.run`) starts them. Connecting a copy is timed: that is how long a new copy
takes to start (duplicate or restart, build, boot), which the decisions use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from jobs import AsyncClient

from ..manifest import DuplicateReplica
from ..scheduling import Connect, Replica

__all__ = ["PARKED", "ElasticGroup", "park", "timed"]

#: The reason a parked copy shows while it is out of rotation.
PARKED = "not started: an elastic copy, started when the backlog needs it"


@dataclass(slots=True)
class ElasticGroup:
    """The copies of one elastic `duplicate:` entry, in order (the first `minimum` run
    from the start)."""

    spec: DuplicateReplica
    minimum: int
    replicas: list[Replica] = field(default_factory=list)
    #: Seconds each start took (from asking for the copy to its API answering).
    start_times: list[float] = field(default_factory=list)

    @property
    def maximum(self) -> int:
        return len(self.replicas)


def park(replica: Replica) -> None:
    """Out of rotation, never probed, until started (`unpark` in the run's control)."""
    replica.refuse(PARKED)
    replica.tried = True  # the pool's start does not wait for it


def timed(connect: Connect, group: ElasticGroup, clock: Callable[[], float]) -> Connect:
    """`connect`, recording how long it took into `group.start_times` when it answers."""

    async def connect_timed() -> AsyncClient:
        started = clock()
        client = await connect()
        group.start_times.append(clock() - started)
        return client

    return connect_timed
