"""`ray:` replicas and `runner.ray.GradioCall` on a Ray cluster of three nodes on this
machine (`support.ray_cluster`: a head and two added nodes, 1 CPU and 2 logical GPUs
each), shared by the module. Real actors, real Gradio apps, real node loss."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from support.apps import pid_alive, start_app
from support.ray_cluster import add_node, fake_cluster

import runner
import runner.manifest
from jobs import ConnectionFailed
from runner.launch import open_replicas
from runner.manifest import load_manifest
from runner.ray import GradioCall, RayError, import_ray
from runner.scheduling import ReplicaPool

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(600)]

APPS = Path(__file__).resolve().parents[1] / "apps"
NODE_APP = APPS / "ray_node.py"
GONE_WITHIN = 15.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with fake_cluster(nodes=2) as made:
        yield made


def manifest(tmp_path: Path, cluster: Any, replica: str, rows: int = 4, extra: str = "") -> Path:
    path = tmp_path / "ray.yaml"
    path.write_text(
        f"name: ray-test\n"
        f"app:\n  endpoint: /where\n  replicas:\n    - {replica}\n"
        f"inputs:\n  rows: {json.dumps([{'x': str(i)} for i in range(rows)])}\n"
        f"run:\n  ray: {{address: '{getattr(cluster, 'address', 'auto')}'}}\n  retries: 5\n{extra}"
    )
    return path


def live_groups() -> list[str]:
    from ray.util import placement_group_table

    return [g for g, info in placement_group_table().items() if info["state"] != "REMOVED"]


def gone(pids: list[int], within: float = GONE_WITHIN) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not any(pid_alive(pid) for pid in pids):
            return True
        time.sleep(0.1)
    return False


async def test_four_replicas_each_get_a_gpu_of_their_own_spread_over_the_nodes(
    tmp_path: Path, cluster: Any
) -> None:
    """4 x {GPU: 1} spread over 3 nodes: every node used, no GPU given twice; when the
    block ends the apps are gone and the placement group released."""
    path = manifest(
        tmp_path,
        cluster,
        f"{{ray: {NODE_APP}, count: 4, num_gpus: 1, num_cpus: 0, placement: spread}}",
    )
    spec = load_manifest(path)
    messages: list[str] = []
    began = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        replicas = await open_replicas(
            spec, stack, download_files=False, log_dir=tmp_path, on_message=messages.append
        )
        answering = time.monotonic() - began
        seen = [json.loads(await r.client.predict("a", api_name="/where")) for r in replicas]
        assert len(live_groups()) == 1
    assert [r.name for r in replicas] == ["ray-1", "ray-2", "ray-3", "ray-4"]
    import ray

    nodes = {node["NodeID"] for node in ray.nodes() if node["Alive"]}
    assert {s["node"] for s in seen} == nodes  # spread: every node holds one
    places = {(s["node"], s["gpus"]) for s in seen}
    assert len(places) == 4 and all(s["gpus"] in ("0", "1") for s in seen)
    assert gone([s["pid"] for s in seen])
    assert live_groups() == []
    placed = next(m for m in messages if m.startswith("placed 4 replicas"))
    print(f"{placed}; all 4 answering after {answering:.1f} s")  # for docs/scaling.md


@pytest.mark.parametrize(
    ("replica", "expected"),
    [
        (
            "{ray: APP, count: 8, num_gpus: 1, num_cpus: 0}",
            "8 x {GPU: 1} requested, the cluster has 6 GPUs",
        ),
        (
            "{ray: APP, count: 2, num_gpus: 3, num_cpus: 0}",
            "2 x {GPU: 3} requested, but no node of the cluster can hold {GPU: 3}",
        ),
        (
            "{ray: APP, count: 4, num_gpus: 0.5, num_cpus: 0, placement: strict_spread}",
            "4 x {GPU: 0.5} requested with placement: strict_spread (one node each), the "
            "cluster has 3 nodes",
        ),
    ],
)
async def test_a_manifest_asking_more_than_the_cluster_has_fails_at_once_saying_what_is_missing(
    tmp_path: Path, cluster: Any, replica: str, expected: str
) -> None:
    """Nothing is started, nothing reserved; the message names what is missing."""
    path = manifest(tmp_path, cluster, replica.replace("APP", str(NODE_APP)))
    began = time.monotonic()
    with pytest.raises(RayError) as info:
        await runner.run_async(path, runner.RunOptions(progress="quiet", handle_signals=False))
    assert expected in str(info.value)
    assert time.monotonic() - began < 60  # no waiting for a placement that cannot be
    assert live_groups() == []


def test_min_count_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = manifest(tmp_path, None, f"{{ray: {NODE_APP}, count: 4, min_count: 2}}")
    with pytest.raises(runner.ManifestError, match="all 4 replicas are reserved together"):
        load_manifest(path)


async def test_a_node_lost_mid_batch_its_jobs_run_elsewhere_every_row_ok_once(
    tmp_path: Path, cluster: Any
) -> None:
    """Two replicas, a whole node each; a node serving one of them is removed mid-batch.
    Its jobs are retried on the other replica: every row is recorded ok exactly once,
    and nothing after the loss claims to come from the lost node."""
    spare = add_node(cluster)  # the node this test takes away
    rows = 300
    path = manifest(
        tmp_path,
        cluster,
        f"{{ray: {NODE_APP}, count: 2, num_gpus: 2, num_cpus: 0, placement: strict_spread, "
        "env: {RAY_DELAY: '0.2'}}",
        rows=rows,
        extra="  concurrency: 2\n",
    )
    results = tmp_path / "runs" / "ray-test" / "results.jsonl"
    removed: dict[str, Any] = {}

    async def remove_a_node_when_it_serves() -> None:
        while True:
            await anyio.sleep(0.2)
            lines = results.read_text().splitlines() if results.exists() else []
            nodes = {json.loads(line)["outputs"]["where"] for line in lines[:50]}
            hosts = {json.loads(n)["node"]: json.loads(n)["replica"] for n in nodes}
            for node in [spare, *cluster.worker_nodes]:
                if node.node_id in hosts and len(lines) >= 20:
                    removed.update(node=node.node_id, replica=hosts[node.node_id])
                    await anyio.to_thread.run_sync(cluster.remove_node, node)
                    removed["at"] = time.time()
                    return

    began = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(remove_a_node_when_it_serves)
        summary = await runner.run_async(
            path, runner.RunOptions(progress="plain", handle_signals=False)
        )
        group.cancel_scope.cancel()
    wall = time.monotonic() - began
    assert removed, "no added node served the batch"
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [r["status"] for r in records] == ["ok"] * rows
    assert len({r["key"] for r in records}) == rows
    assert summary.exit_status == runner.ExitStatus.OK
    after = [
        json.loads(r["outputs"]["where"])
        for r in records
        if datetime.fromisoformat(r["finished_at"]).timestamp() > removed["at"] + 1
    ]
    assert after and all(w["node"] != removed["node"] for w in after)
    print(f"{rows} rows in {wall:.1f} s ({rows / wall:.1f} jobs/s) with a node lost")


async def test_after_its_node_is_lost_the_pool_moves_a_replica_to_its_restarted_actor(
    tmp_path: Path, cluster: Any
) -> None:
    """The actor restarts on another node (its bundle moved there); the pool's probe
    revives the ejected replica at the new URL, which answers from the new node."""
    spare = add_node(cluster)
    path = manifest(
        tmp_path,
        cluster,
        f"{{ray: {NODE_APP}, count: 2, num_gpus: 2, num_cpus: 0, placement: strict_spread}}",
    )
    async with contextlib.AsyncExitStack() as stack:
        replicas = await open_replicas(
            load_manifest(path),
            stack,
            download_files=False,
            log_dir=tmp_path,
            on_message=print,
        )
        where = [json.loads(await r.client.predict("a", api_name="/where")) for r in replicas]
        workers = {n.node_id: n for n in [spare, *cluster.worker_nodes]}
        index = next(i for i, w in enumerate(where) if w["node"] in workers)
        replica, old_url = replicas[index], replicas[index].client.url
        await anyio.to_thread.run_sync(cluster.remove_node, workers[where[index]["node"]])
        lost = time.monotonic()
        back = anyio.Event()

        def on_message(text: str) -> None:
            print(text)
            if text.startswith(f"{replica.name} answers again"):
                back.set()

        pool = ReplicaPool(replicas, on_message=on_message)
        for _ in range(3):  # three failures in a row take it out of rotation
            replica.in_flight += 1
            with pytest.raises(ConnectionFailed) as failed:
                await replica.client.predict("a", api_name="/where")
            pool.release(replica, failed.value)
        assert not replica.healthy
        try:
            async with pool.probing():
                await back.wait()
            print(f"recovered {time.monotonic() - lost:.1f} s after the node was removed")
            assert replica.healthy and replica.client.url != old_url
            now = json.loads(await replica.client.predict("b", api_name="/where"))
            assert now["node"] != where[index]["node"] and now["replica"] == replica.name
        finally:
            await pool.aclose()  # the client at the new URL is the pool's


async def test_gradio_call_maps_a_dataset_through_a_real_app(cluster: Any) -> None:
    """Ray Data over 300 rows against the calculator: each row's sum, its key, ok; the
    app's own error is an error row, not retried; dedupe on spacerun_key."""
    import ray

    with start_app("calculator") as app:
        rows = [{"a": i, "op": "add", "b": 1} for i in range(299)]
        rows.append({"a": 1, "op": "divide", "b": 0})
        ds = ray.data.from_items(rows).map_batches(
            GradioCall,
            fn_constructor_kwargs={
                "app": app.url,
                "endpoint": "/predict",
                "map": {"num1": "{a}", "operation": "{op}", "num2": "{b}"},
                "rate": "200/s",
                "actors": 2,
            },
            concurrency=2,
            batch_size=50,
            num_cpus=0.5,
        )
        out = await anyio.to_thread.run_sync(ds.take_all)
    by_a = {(r["a"], r["op"]): r for r in out}
    assert len(out) == 300 and len(by_a) == 300
    assert all(by_a[(i, "add")]["Result"] == i + 1 for i in range(299))
    assert all(by_a[(i, "add")]["status"] == "ok" for i in range(299))
    bad = by_a[(1, "divide")]
    assert bad["status"] == "error" and bad["Result"] is None
    assert bad["error"].startswith("AppError") and "Math error" in bad["error"]
    assert len({r["spacerun_key"] for r in out}) == 300
    expected = runner.submission_key("/predict", {"num1": 5, "operation": "add", "num2": 1})
    assert by_a[(5, "add")]["spacerun_key"] == expected


def test_a_ray_replica_reads_its_keys_and_writes_them_back(tmp_path: Path) -> None:
    """Every `ray:` key and `run.ray` is read, and the resolved manifest reads back."""
    path = tmp_path / "m.yaml"
    path.write_text(
        f"app:\n  endpoint: /where\n  replicas:\n"
        f"    - ray: {NODE_APP}\n      count: 8\n      num_gpus: 1\n      num_cpus: 0.5\n"
        "      placement: strict_spread\n      pip: [numpy]\n      env: {A: b}\n"
        "      args: --x 1\n      max_restarts: 2\n"
        "run:\n  ray: {address: 'ray://head:10001', placement_timeout: 30s}\n"
    )
    spec = load_manifest(path)
    (replica,) = spec.app.replicas
    assert isinstance(replica, runner.manifest.RayReplica)
    assert (replica.count, replica.num_gpus, replica.num_cpus) == (8, 1.0, 0.5)
    assert replica.placement is runner.manifest.Placement.STRICT_SPREAD
    assert (replica.pip, dict(replica.env), replica.args) == (("numpy",), {"A": "b"}, ("--x", "1"))
    assert spec.run.ray == runner.manifest.RaySpec(
        address="ray://head:10001", placement_timeout=30.0
    )
    again = tmp_path / "again.yaml"
    again.write_text(json.dumps(spec.to_dict()))
    assert load_manifest(again).app == spec.app and load_manifest(again).run == spec.run


def test_a_bad_placement_names_the_choices(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(f"app:\n  replicas:\n    - {{ray: {NODE_APP}, placement: sprad}}\n")
    with pytest.raises(runner.ManifestError, match="expected one of pack, spread, strict_spread"):
        load_manifest(path)


def test_without_ray_installed_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an absent package looks like
    with pytest.raises(RayError, match=r"pip install 'spacerun\[ray\]'"):
        import_ray()
