"""A submission bound to a replica's API as it is now, and sent: the endpoint by name,
the API's identity for the record, the session its State lives in, where its files go.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobs import AppSchema, AsyncClient, AsyncJob, Endpoint, StatusUpdate

from ._outcome import SubmissionLike
from ._replica import Replica
from ._signature import signature_of
from ._status import Attempt

__all__ = ["Binder"]


class Binder:
    """Sends submissions to replicas (`bound`), each job's messages to `on_status`."""

    def __init__(
        self,
        *,
        endpoint: str | None,
        share_session: bool,
        download_dir: Callable[[str], Path] | None,
        on_status: Callable[[Attempt, StatusUpdate], None],
    ) -> None:
        self._endpoint = endpoint
        self._share_session = share_session
        self._download_dir = download_dir
        self._on_status = on_status
        #: Per replica, its client and the session its jobs share (`share_session`).
        self._shared: dict[str, tuple[AsyncClient, AppSchema, Any]] = {}
        #: The identity of each API schema jobs were bound to (by the schema's id).
        self._identities: dict[int, tuple[AppSchema, dict[str, str]]] = {}

    def bound(
        self, replica: Replica, submission: SubmissionLike, attempt: Attempt, files: str = ""
    ) -> tuple[AsyncJob, Endpoint, dict[str, str]]:
        client = replica.client
        # Bound by name to the replica's API as it is now (it may have been re-read).
        endpoint = client.endpoint(self._endpoint)
        api = self._identity(client.schema, endpoint)
        if endpoint.uses_state:
            client = self._session_for(replica, submission)
        values = endpoint.bind((), submission.inputs)
        folder = self._download_dir(submission.key) / files if self._download_dir else None
        job = client.submit_values(endpoint, values, download_to=folder)
        job.add_status_listener(functools.partial(self._on_status, attempt))
        return job, endpoint, api

    def _identity(self, schema: AppSchema, endpoint: Endpoint) -> dict[str, str]:
        found = self._identities.get(id(schema))
        if found is None or found[0] is not schema:
            identity = {"signature": signature_of(endpoint), "gradio": schema.version}
            if schema.space_id:
                identity["space"] = schema.space_id
            found = self._identities[id(schema)] = (schema, identity)
        return found[1]

    def _session_for(self, replica: Replica, submission: SubmissionLike) -> Any:
        # Each row gets a session of its own, unless the manifest asks rows to share one.
        if not self._share_session:
            # One job per session: the State lives as long as the job, no heartbeat needed.
            return replica.client.new_session(heartbeat=False)
        # A replica that moved (`Replica.move_to`) or whose API was read again (it may
        # have restarted) is another app: a session of its own.
        shared = self._shared.get(replica.name)
        client = replica.client
        if shared is None or shared[0] is not client or shared[1] is not client.schema:
            shared = self._shared[replica.name] = (client, client.schema, client.new_session())
        return shared[2]
