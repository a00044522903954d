"""The pool of replicas: which one gets the next job, and which are out of rotation.

A job goes to the healthy replica where it is expected to end first (`_route`): by
headroom (fewest jobs in flight plus jobs the app says are queued ahead of ours, other
users of a public Space, relative to its concurrency window) until its pace is measured.
A slow or distant replica frees its slots later, so it naturally gets less work. With
`queue_ahead` (None: sized per replica, up to `16 x concurrency`; 0: off), a few jobs
beyond the window are kept waiting in a replica's own queue, so that its slots never
wait for our round trip (`_pace`). A replica that fails several attempts in a row (unreachable,
died, restarted, only 5xx, every job timing out) is ejected, probed with growing
intervals, and put back when it answers; if every replica is down the pool waits, with
a message, until a deadline. A replica that cannot come back (its Space crashed or was
paused) is retired for good; when all are, waiting stops at once with their reasons.

At the start of a run (`open`), every replica not connected
yet is connected at once; the run starts with those that answer, the others are
probed the same way as ejected ones and join when they answer. The first replica (in
the manifest's order) that answers gives the run its API (`validated`); any other whose
endpoint signature differs is refused, with what differs.

A result is only recorded if the app that computed it serves the API the rows were
validated against, so the API is read again every time a replica may have become
another app: when a DOWN replica answers again, moves to a new address, or its Space
runs again; when a job on it lost its connection or got a 5xx (a restart shows that
way); and when it sat idle for `recheck_idle` seconds (a restart nobody saw: gradio
takes longer than that to start). Until
then it takes no job. An API that changed in a way the rows still fit by name
(`compare_by_name`) is used, and said once; any other change takes the replica out for
good, naming the change, and with none left the run stops, resumably. Each change is
kept in `api_changes` for the summary.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from datetime import datetime, timezone
from typing import Any

import anyio

from jobs import (
    AppSchema,
    AsyncClient,
    AuthError,
    ConnectionFailed,
    Endpoint,
    JobCancelled,
    JobsError,
    RateLimited,
    ServerError,
    SpaceNotRunning,
    UnsupportedVersion,
)

from ..errors import ExitStatus, RunnerError
from ._replica import Replica, ReplicaState
from ._retry import AttemptTimeout, cause_of, is_overload, retry_after_of
from ._route import choose, finish_in
from ._signature import compare_by_name, endpoint_difference
from ._throttle import Clock

__all__ = ["AllReplicasDown", "ReplicaPool"]

log = logging.getLogger("runner")

#: A probe's ping that takes longer than this counts as no answer.
_PING_TIMEOUT = 15.0
#: Queue-ahead sized by itself keeps at most this many jobs waiting per allowed slot.
_AHEAD_PER_SLOT = 16
_AHEAD_MOST = 64


class AllReplicasDown(RunnerError):
    """Every replica stayed out of rotation past the deadline."""

    exit_status = ExitStatus.FAILED


class ReplicaPool:
    """Hands out replicas with free capacity; tracks health; probes ejected ones.

    Probes run while its owner holds `probing()`; `aclose()` closes the clients the
    pool connected.
    """

    def __init__(
        self,
        replicas: Sequence[Replica],
        *,
        api_name: str | None = None,
        eject_after: int = 3,
        max_probe_interval: float = 60.0,
        down_deadline: float = 600.0,
        start_grace: float = 5.0,
        recheck_idle: float = 2.0,
        queue_ahead: int | None = 0,
        clock: Clock = time.monotonic,
        on_message: Callable[[str], None] | None = None,
    ) -> None:
        if not replicas:
            raise ValueError("a pool needs at least one replica")
        if queue_ahead is not None and queue_ahead < 0:
            raise ValueError("queue_ahead must be 0 (off), a positive count, or None (sized)")
        self.replicas = list(replicas)
        for replica in self.replicas:
            most = min(_AHEAD_MOST, _AHEAD_PER_SLOT * replica.limit.maximum)
            replica.pace.cap = most if queue_ahead is None else queue_ahead
            # Connected before the pool existed (local copies, validation's client): its
            # API was read then, and it counts as idle from now.
            replica.last_used = clock()
        self._api_name = api_name
        self._eject_after = eject_after
        self._max_probe = max_probe_interval
        self._down_deadline = down_deadline
        self._start_grace = start_grace
        self._recheck_idle = recheck_idle
        self._clock = clock
        self._message = on_message or (lambda text: log.info("%s", text))
        self._changed = anyio.Event()
        #: Jobs waiting in `acquire` for a slot, first come first served.
        self._waiters: deque[anyio.Event] = deque()
        #: Waiters woken that have not looked for their slot yet.
        self._woken = 0
        self._all_down_since: float | None = None
        self._opened: list[AsyncClient] = []
        #: The replica whose API the run uses (the first that answered).
        self.reference: Replica | None = None
        #: The run's endpoint as the rows were validated against it (the reference's,
        #: when it first answered); every replica is compared with it.
        self.validated: Endpoint | None = None
        #: Each API change seen on a replica mid-run: when, which, what, what was done.
        self.api_changes: list[dict[str, Any]] = []
        #: Per replica, the signature whose change was last said (each is said once).
        self._said: dict[str, str] = {}
        #: Every row has been taken from the input: the last ones go where they end
        #: first (`_route.choose`), and a slow replica's free slot may stay empty.
        self.tail = False

    def __repr__(self) -> str:
        return f"<ReplicaPool {self.replicas}>"

    @property
    def capacity(self) -> int:
        return sum(r.limit.maximum for r in self.replicas)

    @property
    def in_flight(self) -> int:
        return sum(r.in_flight for r in self.replicas)

    # -- lifecycle --------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the clients the pool connected (call once probing has stopped)."""
        opened, self._opened = self._opened, []
        with anyio.CancelScope(shield=True):
            for client in reversed(opened):
                await client.aclose()

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

    def _choose_reference(self) -> None:
        """The first replica up, in the manifest's order, gives the API; the others up
        are checked against it."""
        up = [r for r in self.replicas if r.healthy]
        if self.reference is not None or not up:
            return
        self.reference = up[0]
        try:
            self.validated = self.reference.client.endpoint(self._api_name)
        except JobsError:
            self.validated = None  # validation says the endpoint is missing, not this
        for replica in up[1:]:
            self._check_api(replica)

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

    @property
    def waiting(self) -> int:
        """Jobs waiting in `acquire` for a slot."""
        return len(self._waiters)

    async def changed(self, longest: float) -> None:
        """Wait until something changes (a slot freed, a replica came back), at most
        `longest` seconds."""
        with anyio.move_on_after(longest):
            await self._changed.wait()

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

    def retire(self, replica: Replica, reason: str) -> None:
        """Take `replica` out of rotation for good (it is never probed again)."""
        if replica.retired is None and replica.healthy:
            replica.stats.ejections += 1
        replica.retired = reason
        replica.refuse(reason)
        self._message(f"{reason}; its jobs go to the other replicas")
        self.notify()

    def message(self, text: str) -> None:
        """Say `text` where the pool says what happens to replicas."""
        self._message(text)

    def notify(self) -> None:
        """Wake the jobs waiting for a replica (a pause ended, a replica came back)."""
        self._notify()

    def recheck(self, replica: Replica) -> None:
        """Read `replica`'s API again before its next job (its Space runs again)."""
        if replica.healthy:
            self._suspect(replica, self._clock(), "it runs again")

    def _suspect(self, replica: Replica, now: float, why: str) -> None:
        log.debug("reading the API of %s again (%s)", replica.name, why)
        if replica.checked or replica.probing:
            replica.suspect(now)  # a check under way now is read again after it
            self._notify()

    def note_queue(self, replica: Replica, queued_ahead: int | None) -> None:
        """What the app reported about its queue (jobs ahead of ours). Those of ours
        sent ahead of it are not someone else's."""
        ours = max(0, replica.in_flight - replica.limit.allowed)
        replica.queued_ahead = max(0, (queued_ahead or 0) - ours)

    def relocate(self, replica: Replica, client: AsyncClient) -> None:
        """`replica` (DOWN) answers at `client`'s address now: its app restarted
        elsewhere. It rejoins routing there once a probe answers; the pool closes
        `client` with the others it opened."""
        self._opened.append(client)
        replica.move_to(client)
        self._message(f"{replica.name} moved to {client.url}")

    # -- probes -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def probing(self) -> AsyncIterator[None]:
        """Probe replicas out of rotation (and connect pending ones) while inside: the
        one probe loop of the pool. Its owner (the run, or whoever made the pool) holds
        it around `open()` and the scheduling; a `Scheduler` never starts one. What the
        body raises comes out as itself, not in an exception group."""
        error: Exception | None = None
        async with anyio.create_task_group() as group:
            group.start_soon(self._probe_loop)
            try:
                yield
            except Exception as exc:  # the loop raises nothing: the body's is the only one
                error = exc
            finally:
                group.cancel_scope.cancel()
        if error is not None:
            raise error

    async def _probe_loop(self) -> None:
        """Each due replica probed in a task of its own, bringing back those that
        answer; runs until cancelled."""
        async with anyio.create_task_group() as group:
            while True:
                now = self._clock()
                for replica in self._due(now):
                    replica.probing = True
                    group.start_soon(self._probe, replica)
                upcoming = [r.down_until for r in self._waiting() if r.down_until is not None]
                delay = min(upcoming) - self._clock() if upcoming else self._max_probe
                with anyio.move_on_after(max(0.05, min(delay, self._max_probe))):
                    await self._changed.wait()

    def _waiting(self) -> list[Replica]:
        """Replicas with a probe due some time, not under way."""
        return [r for r in self.replicas if r.down_until is not None and not r.probing]

    def _due(self, now: float) -> list[Replica]:
        return [r for r in self._waiting() if r.down_until is not None and r.down_until <= now]

    async def _probe(self, replica: Replica) -> None:
        try:
            if replica.state is ReplicaState.PENDING:
                await self._connect(replica)
            elif replica.healthy:
                await self._verify(replica)
            else:
                await self._ping(replica)
        except Exception as exc:
            # An app that cannot be reached, or answers nonsense: either way, not yet.
            # Only unexpected kinds are logged in full (a probe never ends the run).
            if not isinstance(exc, JobsError | RunnerError | OSError | TimeoutError):
                log.warning("probe of %s failed unexpectedly", replica.name, exc_info=True)
            self._probe_failed(replica, exc)
        finally:
            replica.probing = False
            replica.tried = True
            self._notify()

    async def _connect(self, replica: Replica) -> None:
        client = await replica.open_client()
        self._opened.append(client)
        was_down = bool(replica.reason)
        replica.connect_to(client)
        replica.last_used = self._clock()
        if self.reference is not None and not self._check_api(replica):
            return
        self._all_down_since = None
        if was_down:
            self._message(f"{replica.name} answers now; in rotation")

    async def _ping(self, replica: Replica) -> None:
        """A DOWN replica: revive it if it can be, read its API (that is the ping) and
        compare it with the run's before it takes a job again."""
        if replica.revive is not None and (moved := await replica.revive()) is not None:
            self.relocate(replica, moved)
        with anyio.fail_after(_PING_TIMEOUT):
            schema = await replica.client.reload()
        if replica.state is not ReplicaState.DOWN:
            return  # retired meanwhile (its Space broke): what was read does not matter
        if not self._fits(replica, schema):
            return
        replica.come_back()
        replica.last_used = self._clock()
        self._all_down_since = None
        self._message(f"{replica.name} answers again; back in rotation")

    async def _verify(self, replica: Replica) -> None:
        """An UP replica that may have restarted: read its API again and compare it."""
        suspicions = replica.suspicions
        try:
            with anyio.fail_after(_PING_TIMEOUT):
                schema = await replica.client.reload()
        except Exception as exc:
            if not replica.healthy or replica.checked:
                return  # ejected or retired meanwhile: that path probes it now
            replica.failures_in_row += 1
            if replica.failures_in_row >= self._eject_after:
                self._eject(replica, self._clock(), exc)
            else:
                replica.probe_failed(self._clock(), cause_of(exc), self._max_probe)
            return
        if not replica.healthy or replica.checked:
            return  # ejected, retired or back by another path while this read
        if replica.suspicions != suspicions:
            # Suspected again while this read: the restart may have come after it.
            replica.down_until = self._clock()
            return
        if self._fits(replica, schema):
            replica.checked_again()
            replica.last_used = self._clock()  # idle counts from the check

    def _fits(self, replica: Replica, schema: AppSchema) -> bool:
        """Whether `replica`, serving `schema` now, may take the run's rows: its endpoint
        is the validated one, or differs in ways the rows fit by name (said once).
        Otherwise it is taken out for good, with what changed."""
        if self.validated is None:
            return True
        change = compare_by_name(self.validated, schema, self._api_name)
        if change is None:
            return True
        if change.fits:
            if self._said.get(replica.name) != change.description:
                self._said[replica.name] = change.description
                self._note_change(replica, change.description, "re-mapped by name")
                self._message(
                    f"{replica.name} serves a changed API ({change.description}); every "
                    "row still fits it by name, so rows are sent to it mapped by name"
                )
            return True
        self._note_change(replica, change.description, "taken out")
        reason = f"{replica.name} serves a changed API the rows do not fit ({change.description})"
        if replica.retired is None and replica.healthy:
            replica.stats.ejections += 1
        replica.retired = reason
        replica.refuse(reason)
        self._message(
            f"{reason}; it gets no more rows. Point it back at the app the run was "
            "validated against (or start a new run folder for the new app)"
        )
        self._notify()
        return False

    def _note_change(self, replica: Replica, change: str, action: str) -> None:
        self.api_changes.append(
            {
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "replica": replica.name,
                "change": change,
                "action": action,
            }
        )

    def _probe_failed(self, replica: Replica, exc: BaseException) -> None:
        reason = cause_of(exc) if str(exc) else type(exc).__name__
        if replica.state is ReplicaState.DOWN and isinstance(exc, UnsupportedVersion | AuthError):
            # It came back as an app that cannot be used (another gradio, a password that
            # no longer works): waiting will not change that.
            self.retire(replica, f"{replica.name} came back and cannot be used: {reason}")
            return
        if replica.state is ReplicaState.PENDING and not _may_come_back(exc):
            replica.refuse(reason, exc)
            self._message(f"{replica.name} is not used: {reason}")
            return
        replica.probe_failed(self._clock(), reason, self._max_probe)
        log.debug("probe of %s failed: %s", replica.name, reason)

    def _check_api(self, replica: Replica) -> bool:
        """Refuse `replica` if its endpoint differs from the validated one; True if it
        fits. (Replicas that disagree at start are refused rather than re-mapped.)"""
        assert self.reference is not None
        if replica is self.reference or self.validated is None:
            return True
        difference = endpoint_difference(self.validated, replica.client.schema)
        if difference is None:
            return True
        replica.refuse(f"its API differs from {self.reference.name}'s: {difference}")
        self._message(
            f"{replica.name} is not used: its API differs from that of {self.reference.name}, "
            f"which the run uses: {difference}. Point it at the same app and version."
        )
        return False

    # -- health -----------------------------------------------------------------------

    def _eject(self, replica: Replica, now: float, error: BaseException) -> None:
        count = replica.failures_in_row
        replica.eject(now, cause_of(error))
        self._message(
            f"{replica.name} taken out of rotation after "
            f"{count} failures in a row ({type(error).__name__}); "
            "its jobs go to the other replicas, and it is probed again"
        )

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

    async def _wait_for_change(self, now: float, longest: float = 1.0) -> None:
        with anyio.move_on_after(self._wait_timeout(now, longest)):
            await self._changed.wait()

    def _wait_timeout(self, now: float, longest: float = 1.0) -> float:
        """Until the next pause ends or probe is due, at most `longest` seconds."""
        wakeups = [r.limit.paused_until for r in self.replicas if r.limit.paused(now) > 0]
        wakeups += [r.down_until for r in self._waiting() if r.down_until is not None]
        timeout = max(0.01, min(wakeups) - now) if wakeups else longest
        return min(timeout, longest)

    def _notify(self) -> None:
        """Something changed: every waiter looks again (and the prober)."""
        changed, self._changed = self._changed, anyio.Event()
        changed.set()
        self._wake(len(self._waiters))

    def _hand_over(self) -> None:
        """A job ended well: only slots changed (and windows grew). Wake as many
        waiters, first come first, as there are free slots not yet promised to one
        woken earlier; waking them all had each of them look, and all but one wait
        again, for every job that ended."""
        now = self._clock()
        free = sum(
            r.limit.allowed + r.pace.depth - r.in_flight for r in self.replicas if r.free(now)
        )
        self._wake(free - self._woken)

    def _wake(self, count: int) -> None:
        for _ in range(min(count, len(self._waiters))):
            self._waiters.popleft().set()
            self._woken += 1


def _replica_fault(error: BaseException) -> bool:
    """Failures that say something about the replica, not about the job: it cannot be
    reached, answers 5xx, or lets the job run over the timeout."""
    return isinstance(error, ConnectionFailed | ServerError | AttemptTimeout)


def _may_have_restarted(error: BaseException) -> bool:
    """A lost connection or a 5xx is how a restart (or a redeploy) shows: the app
    that answers next may serve another API."""
    return isinstance(error, ConnectionFailed | ServerError)


def _may_come_back(error: BaseException) -> bool:
    """A replica that failed to connect this way may answer later (probe it again);
    otherwise (a wrong password, not a Gradio app) it never will."""
    if isinstance(error, ConnectionFailed | ServerError | RateLimited):
        return True
    if isinstance(error, SpaceNotRunning):
        return error.stage is not None  # asleep, building, paused: not a missing Space
    if isinstance(error, JobsError):
        return error.transient
    return isinstance(error, OSError | TimeoutError)
