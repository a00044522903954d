"""Which free replica a job goes to: the one where it is expected to end first.

A job sent now to a replica ends after that replica's gap plus its run time, plus the
wait behind the jobs already there beyond its window (`Pace.finish_in`). While the
backlog lasts every free slot is filled anyway, so this only orders them; replicas not
measured yet come first (ordered by headroom, as before anything is known), so that
each is measured.

Near the end (`tail`: every row has been taken from the input), a free slot on a slow
replica is left empty when the job would end sooner by waiting for a faster replica's
slot, counting the jobs already waiting for one: the batch's end no longer waits on
whatever was last sent to the slowest replica.
"""

from __future__ import annotations

from collections.abc import Sequence

from ._replica import Replica

__all__ = ["choose", "finish_in"]


def finish_in(replica: Replica, extra: int = 0) -> float | None:
    """Expected seconds until a job sent to `replica` now ends, with `extra` more jobs
    sent there before it; None while its pace is unknown."""
    before = replica.in_flight + replica.queued_ahead + extra
    return replica.pace.finish_in(before, replica.limit.allowed)


def choose(
    free: Sequence[Replica], everyone: Sequence[Replica], *, tail: bool, waiting: int, now: float
) -> Replica | None:
    """The free replica to use, or None to wait for a better one (only in the tail)."""
    best: Replica | None = None
    best_key: tuple[float, float] = (float("inf"), float("inf"))
    for replica in free:
        finish = finish_in(replica)
        key = (-1.0 if finish is None else finish, replica.load())
        if key < best_key:
            best, best_key = replica, key
    if best is None or not tail or best_key[0] < 0:
        return best
    for other in everyone:
        if other in free or not (other.healthy and other.checked) or other.limit.paused(now):
            continue
        finish = finish_in(other, waiting)
        if finish is not None and finish < best_key[0]:
            return None
    return best
