"""How much the client accepts from a server it does not control, and how long it waits.

Any public Space can answer anything: a line of its event stream that never ends, a
compressed `/config` that inflates to gigabytes, a file output that streams forever, or
no answer at all. Each of these is bounded by one documented option of `Limits`; going
over one raises `LimitExceeded` (timeouts: `ConnectionFailed`) naming the option, its
value and how to raise it.

    AsyncClient(url, limits=Limits(max_download_bytes=8 * GiB, read_timeout=300))
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..errors import LimitExceeded

__all__ = ["GiB", "KiB", "Limits", "MiB", "human_bytes", "over_limit"]

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    """The client's bounds on what a server may send. Every one can be raised.

    * `max_message_bytes` (64 MiB): the largest message of the event stream (one SSE
      line, or the `data:` lines of one event together). A job's result travels in one
      message, so an app returning a huge JSON or text value may need more.
    * `max_json_bytes` (32 MiB): the largest JSON document read from the app (`/config`,
      `/info`, the answers of `queue/join` and `upload`), counted after decompression.
    * `max_download_bytes` (1 GiB, None for no limit): the largest output file
      downloaded. A file whose FileData declares a `size` must also match it exactly.
    * `connect_timeout` (10 s): the longest wait to open a connection (or, with your own
      `http=` client, for a free connection of its pool).
    * `read_timeout` (60 s): the longest silence while waiting for the next bytes of an
      answer (or while sending a request). Gradio's event stream sends a heartbeat every
      15 s, so a silence of 60 s means the server is gone. There is no total timeout:
      jobs may run for hours (bound them with `result(timeout=...)`).
    """

    max_message_bytes: int = 64 * MiB
    max_json_bytes: int = 32 * MiB
    max_download_bytes: int | None = 1 * GiB
    connect_timeout: float = 10.0
    read_timeout: float = 60.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None and field.name == "max_download_bytes":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"Limits.{field.name} must be a positive number, not {value!r}")


def human_bytes(size: int) -> str:
    for unit, scale in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if size >= scale:
            return f"{size / scale:.4g} {unit}"
    return f"{size} bytes"


def over_limit(what: str, *, limit: str, value: int, url: str | None) -> LimitExceeded:
    """The error for `what` going over `Limits.<limit>` (= `value` bytes)."""
    where = f" from {url}" if url else ""
    return LimitExceeded(
        f"{what}{where} is over the client's limit of {human_bytes(value)} ({limit}); "
        "the rest was not read. If the app is trusted and really sends that much, raise "
        f"the limit: AsyncClient(..., limits=Limits({limit}=...)).",
        url=url,
        limit=limit,
        value=value,
    )
