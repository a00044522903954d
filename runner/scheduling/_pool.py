"""The pool of replicas: which one gets the next job, and which are out of rotation.

A job goes to the healthy replica where it is expected to end first (`_route`): by
headroom (fewest jobs in flight plus jobs the app says are queued ahead of ours, other
users of a public Space, relative to its concurrency window) until its pace is measured.
A slow or distant replica frees its slots later, so it naturally gets less work. With
`queue_ahead` (None: sized per replica, up to `16 x concurrency`; 0: off), a few jobs
beyond the window are kept waiting in a replica's own queue, so that its slots never
wait for our round trip (`_pace`). A replica that fails several attempts in a row (unreachable,
died, restarted, only 5xx, every job timing out) is ejected, probed with growing
intervals (`_probe`), and put back when it answers; if every replica is down the pool
waits, with a message, until a deadline. A replica that cannot come back (its Space
crashed or was paused) is retired for good; when all are, waiting stops at once with
their reasons.

At the start of a run (`open`), every replica not connected
yet is connected at once; the run starts with those that answer, the others are
probed the same way as ejected ones and join when they answer. The first replica (in
the manifest's order) that answers gives the run its API (`_apicheck`).

The API is read again every time a replica may have become another app: when a DOWN
replica answers again, moves to a new address, or its Space runs again; when a job on
it lost its connection or got a 5xx (a restart shows that way); and when it sat idle
for `recheck_idle` seconds (a restart nobody saw: gradio takes longer than that to
start). Until then it takes no job.
"""

from __future__ import annotations

from collections.abc import Iterable

import anyio

from jobs import AppSchema, ConnectionFailed, JobCancelled, JobsError, ServerError

from ..errors import ExitStatus, RunnerError
from ._probe import Probes
from ._replica import Replica, ReplicaState
from ._retry import AttemptTimeout, cause_of, is_overload, retry_after_of
from ._route import choose, finish_in

__all__ = ["AllReplicasDown", "ReplicaPool"]


class AllReplicasDown(RunnerError):
    """Every replica stayed out of rotation past the deadline."""

    exit_status = ExitStatus.FAILED


class ReplicaPool(Probes):
    """Hands out replicas with free capacity; tracks health; probes ejected ones.

    Probes run while its owner holds `probing()`; `aclose()` closes the clients the
    pool connected.
    """

    # -- start ------------------------------------------------------------------------

    async def open(self) -> AppSchema:
        """Connect every pending replica at once; return the API of the run.

        Waits until each has answered or failed, or, once one is up, at most
        `start_grace` seconds for the others (a Space still waking joins later). With
        none up, waits up to the deadline for one to answer (`AllReplicasDown` after
        it); with none able to answer ever, raises the first one's error. The
        connections are made by the probe loop: call it inside `probing()`.
        """
        started = self._clock()
        for replica in self.replicas:
            if replica.state is ReplicaState.PENDING:
                replica.down_until = started
        self._notify()
        while not self._started(started):
            await self._wait_for_change(self._clock(), longest=self._start_grace)
        self._choose_reference()
        self._report_start()
        if self.reference is None:
            await self._wait_for_first()
        assert self.reference is not None
        return self.reference.client.schema

    def _started(self, started: float) -> bool:
        if all(r.tried for r in self.replicas):
            return True
        up = any(r.healthy for r in self.replicas)
        return up and self._clock() - started >= self._start_grace

    def _report_start(self) -> None:
        others = "the run goes on without it, and " if self.reference is not None else ""
        for replica in self.replicas:
            if replica.state is ReplicaState.PENDING and replica.tried:
                self._message(
                    f"{replica.name} is down at start ({replica.reason}); {others}it is "
                    f"probed again (next in {replica.probe_interval:g} s) and joins when "
                    "it answers"
                )
            elif replica.state is ReplicaState.PENDING:
                replica.reason = "no answer yet"  # so that it is announced when it joins
                self._message(
                    f"{replica.name} has not answered yet; {others}it joins when it answers"
                )

    async def _wait_for_first(self) -> None:
        self._raise_if_all_refused()
        self._message(
            f"no replica answered at start; waiting up to {self._down_deadline:g} s for "
            "one to answer"
        )
        with anyio.move_on_after(self._down_deadline):
            while self.reference is None:
                await self._changed.wait()
                self._choose_reference()
                self._raise_if_all_refused()
            return
        raise AllReplicasDown(
            f"no replica answered for {self._down_deadline:g} s since the start; stopped. "
            "Check the apps are running, then run the same command again to resume."
        )

    def _raise_if_all_refused(self) -> None:
        """None can ever answer (a wrong password, not a Gradio app): say why at once."""
        if all(r.state is ReplicaState.REFUSED for r in self.replicas):
            first = self.replicas[0]
            raise first.refusal or RunnerError(f"{first.name} cannot be used: {first.reason}")

    # -- jobs -------------------------------------------------------------------------

    async def acquire(self, avoid: Iterable[str] = ()) -> Replica:
        """Wait for a replica with a free slot and take the slot. Replicas named in
        `avoid` (where this job already failed) are used only if no other is free."""
        avoided = set(avoid)
        while True:
            now = self._clock()
            free = [r for r in self.replicas if r.free(now) and not self._idle_too_long(r, now)]
            preferred = [r for r in free if r.name not in avoided] or free
            waiting = len(self._waiters)
            replica = choose(preferred, self.replicas, tail=self.tail, waiting=waiting, now=now)
            if replica is not None:
                self._take(replica, now)
                return replica
            self._check_all_down(now)
            await self._wait_for_slot(now)

    def take(self, replica: Replica) -> bool:
        """Take a slot on `replica` itself if it has one free now (a hedge's copy)."""
        now = self._clock()
        if not replica.free(now) or self._idle_too_long(replica, now):
            return False
        self._take(replica, now)
        return True

    def _take(self, replica: Replica, now: float) -> None:
        replica.in_flight += 1
        replica.stats.submitted += 1
        replica.last_used = now

    def free_replicas(self) -> list[Replica]:
        """Replicas with a slot free now (for hedges), fastest expected first."""
        now = self._clock()
        free = [(finish_in(r), r) for r in self.replicas if r.free(now)]
        return [r for finish, r in sorted(free, key=lambda f: f[0] or 0.0) if finish is not None]

    def _idle_too_long(self, replica: Replica, now: float) -> bool:
        """An idle replica may have restarted unseen: read its API before the next job."""
        if replica.in_flight or now - replica.last_used < self._recheck_idle:
            return False
        self._suspect(replica, now, "idle")
        return True

    def fresh(self, replica: Replica) -> bool:
        """Whether a job that took a slot on `replica` a while ago (and waited since, for
        a rate token) may still be sent there: it is up, its API checked, and it was not
        idle meanwhile. If it was, its API is read again first."""
        if not (replica.healthy and replica.checked):
            return False
        now = self._clock()
        if now - replica.last_used < self._recheck_idle:
            return True
        self._suspect(replica, now, "idle")
        return False

    def give_back(self, replica: Replica) -> None:
        """Return a slot taken by `acquire` that was never used (nothing was sent)."""
        replica.in_flight -= 1
        replica.stats.submitted -= 1
        self._notify()

    async def _wait_for_slot(self, now: float) -> None:
        event = anyio.Event()
        self._waiters.append(event)
        try:
            with anyio.move_on_after(self._wait_timeout(now)):
                await event.wait()
        except BaseException:
            if event.is_set():
                self._woken -= 1
                self._hand_over()  # the slot it was woken for goes to the next waiter
            else:
                self._waiters.remove(event)
            raise
        if event.is_set():
            self._woken -= 1
        else:
            self._waiters.remove(event)

    def release(
        self,
        replica: Replica,
        error: BaseException | None,
        *,
        busy_seconds: float = 0.0,
        run_time: float | None = None,
        direct: bool = False,
    ) -> None:
        """Return the slot, and learn from how the attempt ended: `run_time` is what the
        app took to run it, `direct` says it was sent to a free slot (not ahead)."""
        replica.in_flight -= 1
        # A job sent ahead held no slot while it waited in the app's queue.
        held = busy_seconds if direct or run_time is None else min(busy_seconds, run_time)
        replica.stats.busy_seconds += held
        now = self._clock()
        replica.last_used = now
        if error is not None and (
            not isinstance(error, JobsError) or isinstance(error, JobCancelled)
        ):
            pass  # cancelled or stopped: says nothing about the replica
        elif error is None:
            replica.stats.ok += 1
            replica.job_succeeded()
            replica.limit.on_success()
            replica.pace.measured(run_time, busy_seconds, direct=direct)
            replica.pace.grow(replica.limit.allowed)
        elif is_overload(error):
            replica.stats.overloads += 1
            replica.limit.on_overload(now, retry_after_of(error))
            replica.pace.overload()
            self._message(
                f"{replica.name} is overloaded ({type(error).__name__}); "
                f"slowing down to {replica.limit.allowed} in flight"
            )
        elif _replica_fault(error):
            replica.stats.failed += 1
            replica.failures_in_row += 1
            if replica.failures_in_row >= self._eject_after and replica.healthy:
                self._eject(replica, now, error)
            elif replica.healthy and _may_have_restarted(error):
                self._suspect(replica, now, cause_of(error))
        else:
            # The app answered (an app error): the replica itself is fine.
            replica.failures_in_row = 0
        if error is None:
            self._hand_over()
        else:
            self._notify()

    def recheck(self, replica: Replica) -> None:
        """Read `replica`'s API again before its next job (its Space runs again)."""
        if replica.healthy:
            self._suspect(replica, self._clock(), "it runs again")

    def note_queue(self, replica: Replica, queued_ahead: int | None) -> None:
        """What the app reported about its queue (jobs ahead of ours). Those of ours
        sent ahead of it are not someone else's."""
        ours = max(0, replica.in_flight - replica.limit.allowed)
        replica.queued_ahead = max(0, (queued_ahead or 0) - ours)

    # -- health -----------------------------------------------------------------------

    def _check_all_down(self, now: float) -> None:
        usable = [r for r in self.replicas if r.state is not ReplicaState.REFUSED]
        if any(r.healthy for r in usable):
            self._all_down_since = None
            return
        if all(r.retired or r.state is ReplicaState.REFUSED for r in self.replicas):
            reasons = "; ".join(str(r.retired or r.reason) for r in self.replicas)
            raise AllReplicasDown(
                f"no replica is left: {reasons}. Fix them (or use others), then run the same "
                "command again to resume."
            )
        if self._all_down_since is None:
            self._all_down_since = now
            self._message(
                f"all {len(usable)} replicas are down; waiting up to "
                f"{self._down_deadline:g} s for one to answer"
            )
        elif now - self._all_down_since > self._down_deadline:
            raise AllReplicasDown(
                f"no replica answered for {self._down_deadline:g} s; stopped. Check the apps "
                "are running, then run the same command again to resume."
            )


def _replica_fault(error: BaseException) -> bool:
    """Failures that say something about the replica, not about the job: it cannot be
    reached, answers 5xx, or lets the job run over the timeout."""
    return isinstance(error, ConnectionFailed | ServerError | AttemptTimeout)


def _may_have_restarted(error: BaseException) -> bool:
    """A lost connection or a 5xx is how a restart (or a redeploy) shows: the app
    that answers next may serve another API."""
    return isinstance(error, ConnectionFailed | ServerError)
