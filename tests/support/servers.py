"""Which tests start servers: the `app` marker, and a guard that keeps it honest.

`conftest.py` marks a test `app` when it (or a fixture it uses) starts a Gradio app,
the fault proxy, the Hub stand-in or a `spacerun` subprocess, so that
`./scripts/test -m "not app"` is a fast loop of pure tests. Every place in `support/`
that starts such a server calls `starting()`, which fails an unmarked test at once:
a test that is wrongly left out of the marker cannot slip into the fast loop.
"""

from __future__ import annotations

import pytest

__all__ = ["MARK", "running", "starting"]

MARK = "app"

_running: list[pytest.Item | None] = [None]


def running(item: pytest.Item | None) -> None:
    """Called by conftest around each test: the test now running (None between tests)."""
    _running[0] = item


def starting(what: str) -> None:
    """Call before starting a server; raises if the running test is not marked `app`."""
    item = _running[0]
    if item is not None and item.get_closest_marker(MARK) is None:
        raise AssertionError(
            f"{item.nodeid} starts {what} but is not marked {MARK!r}: add its fixture to "
            f"SERVER_FIXTURES or a name it calls to SERVER_NAMES in tests/conftest.py"
        )
