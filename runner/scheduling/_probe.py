"""The probes of a replica pool: replicas out of rotation are probed with growing
intervals and put back when they answer, pending ones are connected.

A DOWN replica's probe revives it if it can be (its Space runs again elsewhere) and
reads its API; an UP replica that may have restarted has its API read again before its
next job. A replica that cannot be used (another gradio, a password that no longer
works, not a Gradio app) is refused or retired instead of probed forever.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import anyio

from jobs import (
    AsyncClient,
    AuthError,
    ConnectionFailed,
    JobsError,
    RateLimited,
    ServerError,
    SpaceNotRunning,
    UnsupportedVersion,
)

from ..errors import RunnerError
from ._apicheck import ApiCheck
from ._replica import Replica, ReplicaState
from ._retry import cause_of

__all__ = ["Probes"]

log = logging.getLogger("runner")

#: A probe's ping that takes longer than this counts as no answer.
_PING_TIMEOUT = 15.0


class Probes(ApiCheck):
    """The one probe loop of a pool (`probing()`), and what a probe finds."""

    def relocate(self, replica: Replica, client: AsyncClient) -> None:
        """`replica` (DOWN) answers at `client`'s address now: its app restarted
        elsewhere. It rejoins routing there once a probe answers; the pool closes
        `client` with the others it opened."""
        self._opened.append(client)
        replica.move_to(client)
        self._message(f"{replica.name} moved to {client.url}")

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
