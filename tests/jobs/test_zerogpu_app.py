"""The ZeroGPU stand-in app through the client: errors arrive as ZeroGPU kinds, and the
log notes keep their level and title."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from jobs import AsyncClient, QuotaExceeded, Status, StatusUpdate, ZeroGpuError


def test_log_notes_keep_level_and_title(app_factory: Any) -> None:
    """ "Successfully acquired a GPU" comes as a success note titled "ZeroGPU queue"."""
    app = app_factory("zerogpu")
    notes: list[StatusUpdate] = []

    async def main() -> None:
        async with AsyncClient(app.url) as client:
            job = client.submit("plain", api_name="/generate")
            job.add_status_listener(notes.append)
            assert await job.result() == "done: plain"

    anyio.run(main)
    logs = [(u.log, u.log_title) for u in notes if u.code is Status.LOG]
    assert (("success", "Successfully acquired a GPU"), "ZeroGPU queue") in logs
    assert (("info", "Waiting for a GPU to become available"), "ZeroGPU queue") in logs


def test_zerogpu_failures_arrive_as_their_kind(app_factory: Any) -> None:
    """A spent quota is a transient QuotaExceeded with the wait; an illegal duration a
    final ZeroGpuError, both still AppErrors with the Space's title."""
    app = app_factory("zerogpu")

    async def main() -> None:
        async with AsyncClient(app.url) as client:
            with pytest.raises(QuotaExceeded) as quota:
                await client.predict("quota", api_name="/generate")
            assert quota.value.retry_after == 2.0 and quota.value.transient
            assert quota.value.title == "ZeroGPU quota exceeded"
            with pytest.raises(ZeroGpuError) as illegal:
                await client.predict("illegal_duration:always", api_name="/generate")
            assert illegal.value.kind == "illegal_duration" and not illegal.value.transient

    anyio.run(main)
