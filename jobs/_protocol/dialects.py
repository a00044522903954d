"""The queue protocols of Gradio 3.x and later, as the few facts a client acts on (sans-IO).

An app names its protocol in `/config` (`protocol`); gradio's own client and servers
at each release are the reference (tags `gradio@4.8.0`, `gradio@4.16.0`, `gradio@4.20.0`,
`gradio@4.21.0`, `gradio@4.44.1`):

* `ws` (3.x: no `protocol` key): a websocket per job at `/queue/join`, decoded by
  `ws` and driven by `jobs._wssession` (whole values, no event ids, cancel by `reset`).
* `sse` (4.0-4.8): `GET queue/join?fn_index&session_hash` opens the job's own stream;
  its `send_data {event_id}` asks for `POST queue/data {event_id, data, fn_index,
  session_hash}`.
* `sse_v1` (4.9-4.16): `POST queue/join` -> `{event_id}`; `GET queue/data?session_hash`
  streams every event of the session, each tagged with `event_id`, and ends when nothing
  of the session is pending.
* `sse_v2` (4.17-4.20): as `sse_v1`; every `process_generating` after a job's first
  carries diffs.
* `sse_v2.1` (4.21): as `sse_v2`; file data is tagged `meta: {"_type": "gradio.FileData"}`.
* `sse_v3` (4.22 and later): as `sse_v2.1`; the stream says `close_stream` before it ends.

Before 4.31 no server has `/cancel`: a job is stopped with `POST reset {event_id}`, which
ends a generator after its current step and drops a queued event (a running
non-generator runs to its end on the server; its job still ends at once here).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UnsupportedVersion

__all__ = ["DIALECTS", "Dialect", "dialect_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Dialect:
    """What one queue protocol makes a client do differently."""

    name: str
    #: `sse`: each job opens its own stream at `queue/join` and sends its data when asked.
    stream_per_job: bool = False
    #: `process_generating` messages after a job's first carry diffs, not whole values.
    diffs: bool = True
    #: The stream announces its end with `close_stream` (else it just ends, cleanly, once
    #: nothing of the session is pending).
    says_close: bool = True
    #: The route that stops an event: `cancel` (`{session_hash, fn_index, event_id}`) or
    #: the older `reset` (`{event_id}`).
    cancel_route: str = "cancel"


DIALECTS = {
    "sse": Dialect(
        name="sse", stream_per_job=True, diffs=False, says_close=False, cancel_route="reset"
    ),
    "sse_v1": Dialect(name="sse_v1", diffs=False, says_close=False, cancel_route="reset"),
    "sse_v2": Dialect(name="sse_v2", says_close=False, cancel_route="reset"),
    "sse_v2.1": Dialect(name="sse_v2.1", says_close=False, cancel_route="reset"),
    "sse_v3": Dialect(name="sse_v3"),
    # gradio 3.x: a websocket per job (`_wssession`); its messages carry whole values and
    # a job is stopped with `reset {session_hash, fn_index}` and closing its socket.
    "ws": Dialect(
        name="ws", stream_per_job=True, diffs=False, says_close=False, cancel_route="reset"
    ),
}


def dialect_of(config: dict[str, Any] | Any, url: str) -> Dialect:
    """The protocol an app's `/config` names; UnsupportedVersion for one this client does
    not speak, with what to do about it."""
    protocol = config.get("protocol")
    version = str(config.get("version", "unknown"))
    dialect = DIALECTS.get(str(protocol))
    if dialect is not None:
        return dialect
    if protocol is None:
        major = version.split(".", 1)[0]
        if not (major.isdigit() and int(major) < 3):
            return DIALECTS["ws"]  # gradio 3.x: no `protocol` key
        advice = (
            "gradio before 3.0 is not supported by any client: upgrade the app's gradio "
            "(3.x or later) to call it from here"
        )
        what = f"gradio {version} (before the websocket queue protocol of 3.x)"
    else:
        advice = "upgrade spacerun, or tell its maintainers about this protocol"
        what = f"gradio {version}, whose protocol {protocol!r} spacerun does not know"
    raise UnsupportedVersion(f"the app at {url} runs {what}: {advice}.", url=url, version=version)
