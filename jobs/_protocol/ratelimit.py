"""How long a server asks us to wait: `Retry-After`, or the IETF `RateLimit` header (sans-IO).

The Hugging Face Hub and the Spaces proxy announce their limits as in
draft-ietf-httpapi-ratelimit-headers: `RateLimit: "api";r=0;t=55` (policy "api", 0
requests remaining, the window resets in 55 s) with
`RateLimit-Policy: "fixed window";"api";q=500;w=300`. Older servers send the earlier
draft's `RateLimit-Remaining`/`RateLimit-Reset`. `Retry-After` wins when present.

    wait = retry_after(response.headers)      # seconds, or None
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = ["retry_after"]

_PARAM = re.compile(r";\s*(?P<key>[a-z*][a-z0-9_.*-]*)\s*=\s*(?P<value>\"[^\"]*\"|[^;,\s]+)")


def retry_after(headers: Mapping[str, str], *, now: datetime | None = None) -> float | None:
    """Seconds to wait before the next request, from the response's headers, or None.

    `headers` must look names up case-insensitively (httpx's and requests' do).
    """
    if (value := headers.get("retry-after")) is not None:
        return _retry_after_value(value, now or datetime.now(timezone.utc))
    if (value := headers.get("ratelimit")) is not None:
        return _structured_reset(value)
    reset = headers.get("ratelimit-reset")
    if reset is not None and headers.get("ratelimit-remaining", "0").strip() == "0":
        return _seconds(reset)
    return None


def _retry_after_value(value: str, now: datetime) -> float | None:
    if (seconds := _seconds(value)) is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def _structured_reset(value: str) -> float | None:
    """The reset of an exhausted policy (r=0) in a `RateLimit` list. The header comes on
    every response, so a policy with requests left is not why a request was refused (as
    huggingface_hub reads it, `utils/_http.py`)."""
    resets = []
    for item in value.split(","):
        params = {m["key"]: m["value"].strip('"') for m in _PARAM.finditer(item)}
        reset = _seconds(params.get("t", ""))
        if reset is not None and params.get("r") == "0":
            resets.append(reset)
    return max(resets) if resets else None


def _seconds(value: str) -> float | None:
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
