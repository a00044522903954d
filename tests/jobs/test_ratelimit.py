"""How long to wait, from `Retry-After` or the IETF `RateLimit` header the Hub sends."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx
import pytest

from jobs._protocol.ratelimit import retry_after

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Thu, 01 Jan 2026 12:00:30 GMT"}, 30.0),
        ({"Retry-After": "3", "RateLimit": '"api";r=0;t=55'}, 3.0),
        (
            {"RateLimit": '"api";r=0;t=55', "RateLimit-Policy": '"fixed window";"api";q=500;w=300'},
            55.0,
        ),
        ({"RateLimit": '"api";r=12;t=40, "resolvers";r=0;t=120'}, 120.0),
        ({"RateLimit": '"api";r=3;t=40'}, None),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "9"}, 9.0),
        ({"RateLimit-Remaining": "5", "RateLimit-Reset": "9"}, None),
        ({"RateLimit": "garbage"}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_wait_read_from_headers(headers: dict[str, str], expected: float | None) -> None:
    """Retry-After wins; else the exhausted RateLimit policy's `t=`; a policy with requests
    left says nothing (the header comes on every response)."""
    assert retry_after(httpx.Headers(headers), now=NOW) == expected
