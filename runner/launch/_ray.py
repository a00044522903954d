"""`ray:` replicas: copies of an app script in Ray actors across a cluster's nodes.

    replicas = await open_ray_replicas(spec, manifest.run.ray, stack, ...)

1. Connect to the cluster (`run.ray.address`; none: a Ray instance on this machine).
2. Check that the cluster can hold `count` x {CPU: num_cpus, GPU: num_gpus} at all, and
   fail at once naming what is missing ("8 x {GPU: 1} requested, the cluster has 6
   GPUs"); then reserve them all together in a placement group (pack, spread or
   strict_spread), waiting up to `run.ray.placement_timeout`. A run never goes ahead on
   fewer replicas than asked.
3. Start one actor per bundle (`runner.launch._ray_actor`): the script's folder reaches
   the node as the actor's `working_dir` (plus `pip` and `env_vars`), so no shared
   filesystem is assumed. Each actor starts the app on its node's IP and a free port
   and returns its URL; the pool then treats it like any replica.
4. Ray never retries a call (`max_task_retries=0`); an actor may restart
   (`max_restarts`), on another node if its node died (the placement group moves the
   bundle). The replica's `revive` (run by the pool's probe once the replica is DOWN)
   asks the actor where its app answers now; at a new URL it returns a client there, and
   the pool moves the replica to it (`ReplicaPool.relocate`, `Replica.move_to`).
5. However the run ends, the stack stops each app's process group, kills the actors and
   removes the placement group. If spacerun itself dies (`kill -9`), Ray kills the
   actors of a dead driver and drops its placement group; each app dies with its actor
   (death signal).
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from jobs import AsyncClient

from ..manifest import Placement, RayReplica, RaySpec
from ..ray import RayError, connected
from ..scheduling import AdaptiveLimit, Replica, Revive
from ._local import STOP_GRACE
from ._ray_actor import ActorInfo, ActorSpec, ReplicaActor

__all__ = ["open_ray_replicas"]

log = logging.getLogger("runner")

#: On top of the app's ready_timeout: the actor's start (working_dir download, pip).
_ACTOR_START = 300.0
#: Longest wait for a started app to give its config and API.
_CONNECT_TIMEOUT = 30.0
_STRATEGIES = {
    Placement.PACK: "PACK",
    Placement.SPREAD: "SPREAD",
    Placement.STRICT_SPREAD: "STRICT_SPREAD",
}


async def open_ray_replicas(
    spec: RayReplica,
    cluster: RaySpec | None,
    stack: contextlib.AsyncExitStack,
    *,
    options: Mapping[str, Any],
    concurrency: int,
    first_index: int,
    on_message: Callable[[str], None],
) -> list[Replica]:
    """Place, start and connect `spec.count` replicas on the Ray cluster, named
    `ray-<first_index>`, ...; everything is undone by `stack`. Raises RayError (what the
    cluster lacks, an app that did not start) and the `jobs` errors of connecting."""
    cluster = cluster or RaySpec()
    ray = stack.enter_context(connected(cluster.address, on_message))
    bundle = _bundle(spec)
    check_fits(ray, bundle, spec.count, spec.placement)
    group = await _place(ray, bundle, spec, cluster.placement_timeout, on_message)
    stack.callback(ray.util.remove_placement_group, group)
    names = [f"ray-{first_index + offset}" for offset in range(spec.count)]
    actors = _create_actors(ray, spec, group, names)
    stack.push_async_callback(_stop_actors, ray, actors)
    infos = await _ready(ray, spec, actors, names)
    replicas = []
    for name, actor, info in zip(names, actors, infos, strict=True):
        assert info.url is not None
        client = await _connect(info.url, options)
        stack.push_async_callback(client.aclose)
        on_message(f"{name} ready at {info.url} (node {info.node_id[:8]}, GPUs {info.gpus})")
        replicas.append(
            Replica(
                name=name,
                client=client,
                limit=AdaptiveLimit(maximum=concurrency),
                revive=_reviver(ray, name, actor, _Where(url=info.url), spec, options, on_message),
                gpu=info.gpus,
            )
        )
    return replicas


async def _connect(url: str, options: Mapping[str, Any]) -> AsyncClient:
    try:
        with anyio.fail_after(_CONNECT_TIMEOUT):
            return await AsyncClient.connect(url, **options)
    except TimeoutError:
        raise RayError(
            f"{url} did not give its config and API within {_CONNECT_TIMEOUT:g} s"
        ) from None


# -- placing -------------------------------------------------------------------------


def _bundle(spec: RayReplica) -> dict[str, float]:
    bundle = {"CPU": spec.num_cpus, "GPU": spec.num_gpus}
    return {name: amount for name, amount in bundle.items() if amount > 0}


def check_fits(ray: Any, bundle: Mapping[str, float], count: int, placement: Placement) -> None:
    """RayError, at once, if the cluster as it is could never hold `count` x `bundle`."""
    nodes = [node["Resources"] for node in ray.nodes() if node.get("Alive")]
    asked = f"{count} x {_show(bundle)} requested"
    short = [
        name
        for name, amount in bundle.items()
        if sum(node.get(name, 0.0) for node in nodes) < amount * count
    ]
    if short:
        have = ", ".join(
            _amount(sum(node.get(name, 0.0) for node in nodes), name) for name in short
        )
        raise RayError(
            f"{asked}, the cluster has {have}: lower count, num_gpus or num_cpus, or add "
            "nodes to the cluster"
        )
    holding = [n for n in nodes if all(n.get(k, 0.0) >= v for k, v in bundle.items())]
    if not holding:
        largest: Mapping[str, float] = max(
            nodes, key=lambda n: tuple(n.get(k, 0.0) for k in bundle), default={}
        )
        raise RayError(
            f"{asked}, but no node of the cluster can hold {_show(bundle)} (the largest has "
            f"{_show({k: largest.get(k, 0.0) for k in bundle})}): a replica runs on one node"
        )
    if placement is Placement.STRICT_SPREAD and len(holding) < count:
        raise RayError(
            f"{asked} with placement: strict_spread (one node each), the cluster has "
            f"{len(holding)} nodes that can hold one: use spread, or add nodes"
        )


async def _place(
    ray: Any,
    bundle: Mapping[str, float],
    spec: RayReplica,
    deadline: float,
    on_message: Callable[[str], None],
) -> Any:
    from ray.util.placement_group import placement_group

    on_message(
        f"reserving {spec.count} x {_show(bundle)} on the Ray cluster ({spec.placement.value})"
    )
    group = placement_group([dict(bundle)] * spec.count, strategy=_STRATEGIES[spec.placement])
    began = anyio.current_time()
    with anyio.move_on_after(deadline):
        await group.ready()
        on_message(f"placed {spec.count} replicas in {anyio.current_time() - began:.1f} s")
        return group
    ray.util.remove_placement_group(group)
    free = ray.available_resources()
    raise RayError(
        f"{spec.count} x {_show(bundle)} requested, and the cluster could not place them all "
        f"within {deadline:g} s (run.ray.placement_timeout); free now: "
        f"{_show({k: free.get(k, 0.0) for k in bundle})}. Other work may hold the rest "
        "(`ray status` shows it)."
    )


def _show(resources: Mapping[str, float]) -> str:
    return "{" + ", ".join(f"{k}: {_number(v)}" for k, v in resources.items()) + "}"


def _amount(value: float, name: str) -> str:
    return f"{_number(value)} {name}s" if value != 1 else f"1 {name}"


def _number(value: float) -> str:
    return str(int(value)) if math.isclose(value, round(value)) else f"{value:g}"


# -- actors --------------------------------------------------------------------------


def _create_actors(ray: Any, spec: RayReplica, group: Any, names: list[str]) -> list[Any]:
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    runtime_env: dict[str, Any] = {"working_dir": _upload(ray, spec.script.parent)}
    if spec.pip:
        runtime_env["pip"] = list(spec.pip)
    if spec.env:
        runtime_env["env_vars"] = dict(spec.env)
    remote = ray.remote(ReplicaActor)
    actors = []
    for index, name in enumerate(names):
        actor_spec = ActorSpec(
            name=name,
            script=spec.script.name,
            python=spec.python,
            args=spec.args,
            ready_timeout=spec.ready_timeout,
        )
        actors.append(
            remote.options(
                num_cpus=spec.num_cpus,
                num_gpus=spec.num_gpus,
                max_restarts=spec.max_restarts,
                max_task_retries=0,  # an app call is never repeated by Ray
                runtime_env=runtime_env,
                scheduling_strategy=PlacementGroupSchedulingStrategy(
                    placement_group=group, placement_group_bundle_index=index
                ),
            ).remote(actor_spec)
        )
    return actors


def _upload(ray: Any, folder: Path) -> str:
    """The script's folder, zipped into the cluster's storage (GCS): its `gcs://` URI.

    Private Ray, on purpose: an actor's runtime_env takes a URI only ("Passing
    directories or modules to be dynamically uploaded is only supported at the job level
    (i.e., passed to `ray.init`)", Ray 2.x), and the job's runtime_env cannot serve here:
    it is fixed when the driver connects (the user's or a test's `ray.init` may come
    first) and holds one folder, where each `ray:` entry has its own. This is the step
    `ray.init` runs for a job's working_dir (content-addressed: an unchanged folder is
    not uploaded again; `.gitignore` and `.rayignore` apply)."""
    try:
        from ray._private.runtime_env.working_dir import upload_working_dir_if_needed
    except ImportError as exc:  # pragma: no cover - a Ray that moved its internals
        raise RayError(
            f"this Ray ({ray.__version__}) has no upload_working_dir_if_needed, which "
            "ray: replicas use to ship the app's folder; install ray 2.9 to 2.60"
        ) from exc
    # The zip is made in a folder of our own, which exists for as long as the upload.
    with tempfile.TemporaryDirectory(prefix="spacerun-ray-upload-") as scratch:
        env = upload_working_dir_if_needed(
            {"working_dir": str(folder)}, include_gitignore=True, scratch_dir=scratch, logger=log
        )
    uri: str = env["working_dir"]
    return uri


async def _ready(
    ray: Any, spec: RayReplica, actors: list[Any], names: list[str]
) -> list[ActorInfo]:
    """Each actor's app, once it answers; RayError naming the first that did not."""
    infos: list[ActorInfo] = []
    # Started together (the actors' constructors run in parallel); awaited in turn.
    refs = [actor.info.remote() for actor in actors]
    with anyio.fail_after(spec.ready_timeout + _ACTOR_START):
        for name, ref in zip(names, refs, strict=True):
            try:
                info: ActorInfo = await ref
            except ray.exceptions.RayError as exc:
                raise RayError(f"{name} of {spec.script.name} did not start: {exc}") from exc
            if info.url is None:
                raise RayError(
                    f"{name} of {spec.script.name} on node {info.node_id[:8]} "
                    f"({info.host}): {info.error}"
                )
            infos.append(info)
    return infos


async def _stop_actors(ray: Any, actors: list[Any]) -> None:
    """Stop every app's process group, then the actors (shielded: runs however the run
    ends)."""
    with anyio.CancelScope(shield=True):
        refs = [actor.stop.remote() for actor in actors]
        with anyio.move_on_after(STOP_GRACE * 2 + 5):
            for ref in refs:
                with contextlib.suppress(ray.exceptions.RayError):
                    await ref
        for actor in actors:
            with contextlib.suppress(ray.exceptions.RayError, ValueError):
                ray.kill(actor, no_restart=True)


@dataclass(slots=True)
class _Where:
    url: str


def _reviver(
    ray: Any,
    name: str,
    actor: Any,
    where: _Where,
    spec: RayReplica,
    options: Mapping[str, Any],
    on_message: Callable[[str], None],
) -> Revive:
    """The replica's `revive`: where its app answers now (the actor restarts it if it
    died, and Ray restarts the actor, elsewhere if its node is gone); a client there
    when that is a new URL (the pool then moves the replica and closes the client at
    the end), else None."""

    async def revive() -> AsyncClient | None:
        try:
            with anyio.fail_after(spec.ready_timeout + _ACTOR_START):
                info: ActorInfo = await actor.ensure_running.remote()
        except ray.exceptions.RayError as exc:
            raise RayError(f"{name}: its actor is not available: {exc}") from exc
        if info.url is None:
            raise RayError(f"{name} on node {info.node_id[:8]}: {info.error}")
        if info.url == where.url:
            return None
        client = await _connect(info.url, options)
        where.url = info.url
        on_message(f"{name} restarted on node {info.node_id[:8]} at {info.url}")
        return client

    return revive
