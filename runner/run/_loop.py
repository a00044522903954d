"""The event loop a run uses: uvloop where it is installed, asyncio's own elsewhere.

A run is one process driving thousands of HTTP exchanges; uvloop's loop (libuv, in C)
schedules them for less CPU than asyncio's Python loop (`bench/bench_runner.py`).
"""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = ["backend_options"]


def backend_options() -> dict[str, Any]:
    """`anyio.run(..., backend_options=...)` for a run."""
    return {"use_uvloop": importlib.util.find_spec("uvloop") is not None}
