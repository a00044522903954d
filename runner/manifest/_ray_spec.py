"""The manifest model of `ray:` replicas (app scripts in Ray actors) and of `run.ray`
(the cluster they run on), and how they are written back as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar

from ._durations import format_duration

__all__ = [
    "READY_TIMEOUT",
    "Placement",
    "RayReplica",
    "RaySpec",
    "dump_process",
    "dump_ray",
    "dump_ray_replica",
]

#: As for `local:` copies: a script may load a model for minutes before it listens.
READY_TIMEOUT = 600.0


class Placement(str, Enum):
    """How the replicas of a `ray:` entry are spread over the cluster's nodes (Ray's
    placement group strategies)."""

    PACK = "pack"  # as few nodes as possible (the default)
    SPREAD = "spread"  # over as many nodes as possible, sharing nodes when it must
    STRICT_SPREAD = "strict_spread"  # each on a node of its own, or fail


@dataclass(frozen=True, slots=True, kw_only=True)
class RayReplica:
    """`count` processes of an app script, each in a Ray actor on a cluster's node.

    The script's folder reaches the nodes as the actors' `working_dir`; `pip` and `env`
    are installed and set there too (Ray's runtime environment).
    """

    script: Path
    count: int = 1
    num_gpus: float = 0.0
    num_cpus: float = 1.0
    placement: Placement = Placement.PACK
    #: The interpreter on the node; None means the Python the Ray worker runs.
    python: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    #: Packages Ray installs for the actors (a runtime environment's `pip`).
    pip: tuple[str, ...] = ()
    #: How often Ray may restart a replica's actor (on another node if its node died).
    max_restarts: int = 3
    #: Seconds a copy may take, once its actor runs, until it answers.
    ready_timeout: float = READY_TIMEOUT
    concurrency: int | None = None

    kind: ClassVar[str] = "ray"
    #: Actors must be placed and started first: the last choice to read the API from.
    probe_rank: ClassVar[int] = 4

    def for_validation(self) -> RayReplica:
        """One actor on the cluster."""
        return replace(self, count=1)

    def to_data(self) -> dict[str, Any]:
        return dump_ray_replica(self)


@dataclass(frozen=True, slots=True, kw_only=True)
class RaySpec:
    """Which Ray cluster the `ray:` replicas run on (`run.ray`)."""

    #: `auto` (the cluster this machine belongs to), `ray://host:10001`, `host:6379`;
    #: None starts a Ray instance on this machine for the run.
    address: str | None = None
    #: How long to wait for the cluster to place every replica before failing.
    placement_timeout: float = 120.0


def dump_process(
    python: str | None, env: Mapping[str, str], args: tuple[str, ...]
) -> dict[str, Any]:
    """How a copy spacerun starts (`local:`, `ray:`) is run, as manifest data."""
    out: dict[str, Any] = {}
    if python is not None:
        out["python"] = python
    if env:
        out["env"] = dict(env)
    if args:
        out["args"] = list(args)
    return out


def dump_ray_replica(replica: RayReplica) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ray": str(replica.script),
        "count": replica.count,
        "num_gpus": replica.num_gpus,
        "num_cpus": replica.num_cpus,
        "placement": replica.placement.value,
        "max_restarts": replica.max_restarts,
        "ready_timeout": format_duration(replica.ready_timeout),
    }
    out.update(dump_process(replica.python, replica.env, replica.args))
    if replica.pip:
        out["pip"] = list(replica.pip)
    return out


def dump_ray(ray: RaySpec) -> dict[str, Any]:
    out: dict[str, Any] = {"placement_timeout": format_duration(ray.placement_timeout)}
    if ray.address is not None:
        out["address"] = ray.address
    return out
