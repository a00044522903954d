"""Which API a pool's replicas serve, compared with the one the rows were validated
against.

The first replica (in the manifest's order) that answers gives the run its API
(`validated`); any other whose endpoint signature differs at start is refused, with
what differs. A result is only recorded if the app that computed it serves that API, so
the API is read again every time a replica may have become another app (the pool and
its probes decide when). An API that changed in a way the rows still fit by name
(`compare_by_name`) is used, and said once; any other change takes the replica out for
good, naming the change, and with none left the run stops, resumably. Each change is
kept in `api_changes` for the summary.
"""

from __future__ import annotations

from datetime import datetime, timezone

from jobs import AppSchema, JobsError

from ._poolbase import PoolBase
from ._replica import Replica
from ._signature import compare_by_name, endpoint_difference

__all__ = ["ApiCheck"]


class ApiCheck(PoolBase):
    """The run's API chosen, and each replica's compared with it."""

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
