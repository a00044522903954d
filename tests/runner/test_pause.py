"""Account-level pauses: every replica reached with one token waits for its quota's reset."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

import anyio
import pytest

from jobs import QuotaExceeded
from runner.scheduling import AccountPauses, AdaptiveLimit, Replica, RunHalted

WALL = 1_800_000_000.0  # a fixed "now", epoch seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def replica(name: str, account: str | None) -> Replica:
    return Replica(
        # The pauses never call the app: any object stands in for its client.
        name=name,
        client=cast(Any, object()),
        limit=AdaptiveLimit(maximum=2),
        account=account,
    )


def quota(wait: float | None) -> QuotaExceeded:
    return QuotaExceeded("spent", retry_after=wait, title="ZeroGPU quota exceeded")


def pauses(replicas: list[Replica], clock: Clock, **options: Any) -> AccountPauses:
    messages: list[str] = []
    made = AccountPauses(
        replicas,
        clock=clock,
        wall=lambda: WALL + clock.now - 100.0,
        on_message=messages.append,
        **options,
    )
    made.messages = messages  # type: ignore[attr-defined]
    return made


def test_every_replica_of_the_account_waits_until_the_reset() -> None:
    """Replicas of the same token pause together; another account's replica does not."""
    clock = Clock()
    a1, a2, b, own = (
        replica("a1", "hf:a"),
        replica("a2", "hf:a"),
        replica("b", "hf:b"),
        replica("own", None),
    )
    watch = pauses([a1, a2, b, own], clock)
    assert anyio.run(watch.pause, a1, quota(588)) == 588
    assert a1.limit.paused(clock.now) == a2.limit.paused(clock.now) == 588
    assert b.limit.paused(clock.now) == own.limit.paused(clock.now) == 0
    until = datetime.fromtimestamp(WALL + 588)
    assert watch.describe() == f"paused: ZeroGPU quota until {until:%H:%M} (in 0:09:48)"
    # Another row of the same account reports the same pause: still one record.
    anyio.run(watch.pause, a2, quota(587))
    assert len(watch.records) == 1 and watch.records[0].replicas == ("a1", "a2")
    clock.now += 600
    assert watch.describe() is None


def test_a_wait_past_max_wait_halts_resumably() -> None:
    """Longer than run.max_wait: RunHalted (exit as interrupted), saying when to resume."""
    clock = Clock()
    one = replica("one", "hf:a")
    watch = pauses([one], clock, max_wait=3600)
    with pytest.raises(RunHalted) as info:
        anyio.run(watch.pause, one, quota(86400))
    assert info.value.exit_status == 130
    assert "longer than run.max_wait (1:00:00)" in info.value.message
    assert "run the same command again after" in info.value.message


def test_no_wait_given_asks_the_quota_then_backs_off() -> None:
    """Without "Try again in": the quota route's reset, else a doubling back-off."""
    clock = Clock()
    asked, other = replica("asked", "hf:a"), replica("other", "hf:b")

    async def resets_in() -> float | None:
        return 42.0

    watch = pauses([asked, other], clock, lookups={"hf:a": resets_in})
    assert anyio.run(watch.pause, asked, quota(None)) == 42.0
    assert anyio.run(watch.pause, other, quota(None)) == 60.0
    clock.now += 61
    assert anyio.run(watch.pause, other, quota(None)) == 120.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run: {budget: five}", "run.budget: expected an amount in dollars such as $5"),
        ("run: {budget: $0}", "run.budget: expected an amount in dollars"),
        ("run: {max_wait: soon}", "run.max_wait:"),
        (
            "app: {replicas: [{duplicate: a/b, after: stop}]}",
            "after: expected one of pause, sleep, keep, got 'stop'",
        ),
    ],
)
def test_new_manifest_keys_say_what_is_wrong(tmp_path: Any, text: str, message: str) -> None:
    """run.budget, run.max_wait and duplicate `after:` are checked where they are written."""
    from runner.errors import ManifestError
    from runner.manifest import load_manifest

    path = tmp_path / "m.yaml"
    base = "app: {url: http://127.0.0.1:1}\n"
    path.write_text(text + "\n" if text.startswith("app") else base + text + "\n")
    with pytest.raises(ManifestError, match=message.replace("$", r"\$").replace(".", r"\.")):
        load_manifest(path)


def test_new_manifest_keys_read_and_written_back(tmp_path: Any) -> None:
    """`$5`, `2h` and `after: keep` are read, and the resolved manifest keeps them."""
    from runner.manifest import load_manifest

    path = tmp_path / "m.yaml"
    path.write_text(
        "app: {replicas: [{duplicate: a/b, after: keep}]}\nrun: {budget: $5, max_wait: 2h}\n"
    )
    manifest = load_manifest(path)
    assert (manifest.run.budget, manifest.run.max_wait) == (5.0, 7200.0)
    dumped = manifest.to_dict(redact=True)
    assert dumped["run"]["budget"] == "$5" and dumped["run"]["max_wait"] == "2h"
    assert dumped["app"]["replicas"][0]["after"] == "keep"


def test_no_replica_left_stops_with_the_stage() -> None:
    """Once every replica is retired (a broken Space), waiting for one fails at once
    with the reasons."""
    from runner.scheduling import AllReplicasDown, ReplicaPool

    crashed = replica("bob/app", "hf:a")
    pool = ReplicaPool([crashed], on_message=lambda _: None)
    pool.retire(crashed, "bob/app is RUNTIME_ERROR: the app crashed")
    with pytest.raises(AllReplicasDown, match="bob/app is RUNTIME_ERROR"):
        anyio.run(pool.acquire)
    assert crashed.stats.ejections == 1
