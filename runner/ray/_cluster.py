"""Ray, imported on first use, and the connection to a cluster for the length of a run.

Ray is an optional dependency (`pip install 'spacerun[ray]'`): nothing here imports it
until a `ray:` replica or `runner.ray.GradioCall` needs it, and its absence is a clear
error naming the extra.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from types import ModuleType

from ..errors import RunnerError

__all__ = ["RAY_EXTRA", "RayError", "connected", "import_ray"]

log = logging.getLogger("runner")

RAY_EXTRA = "pip install 'spacerun[ray]'"


class RayError(RunnerError):
    """Ray is missing, its cluster cannot be reached, or the cluster cannot hold the
    replicas asked for (the message names what is missing)."""


def import_ray() -> ModuleType:
    """The `ray` module, or RayError saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayError(
            f"ray: replicas and runner.ray need Ray, which is not installed here ({exc}); "
            f"install it with {RAY_EXTRA}"
        ) from exc
    return ray


@contextlib.contextmanager
def connected(address: str | None, on_message: Callable[[str], None]) -> Iterator[ModuleType]:
    """Ray, connected to the cluster at `address` (None: a Ray instance started on this
    machine for the block) and disconnected at the end. A process already connected
    (`ray.init` called by the user, or by a test) keeps its connection, and keeps it
    open afterwards.

    Call it on the event loop's thread: a local instance's processes are tied to the
    thread that starts them (see `runner.launch._local`)."""
    ray = import_ray()
    if ray.is_initialized():
        on_message("using the Ray cluster this process is already connected to")
        yield ray
        return
    where = address or "a Ray instance on this machine"
    on_message(f"connecting to {where}")
    options: dict[str, object] = {"log_to_driver": False}
    if address is None:
        options["include_dashboard"] = False
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayError(
            f"could not connect to the Ray cluster at {where}: {exc}. Check run.ray.address "
            "(auto, host:6379 or ray://host:10001) and that the cluster is up (ray status)."
        ) from exc
    try:
        yield ray
    finally:
        ray.shutdown()
