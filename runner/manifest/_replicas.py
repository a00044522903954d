"""The manifest parser's readers of `app.replicas`: one entry (a mapping, or the text of
a URL, Space id or script) -> a typed replica spec."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ._fields import Fields
from ._ray_spec import READY_TIMEOUT, Placement, RayReplica
from ._replica_specs import (
    ALL_GPUS,
    LOCAL_READY_TIMEOUT,
    DuplicateReplica,
    LocalReplica,
    ReplicaSpec,
    SpaceReplica,
    UrlReplica,
)
from ._yaml import KeyPath

__all__ = ["REPLICA_KEYS", "ReplicaFields", "text_kind"]

DUPLICATE_AFTER = ("pause", "sleep", "keep")
DUPLICATE_STUCK = ("restart", "factory_reboot", "leave")
_SPACE_AT = re.compile(r"[A-Za-z0-9][\w-]*/[A-Za-z0-9_][\w.-]*(@[\w./-]+)?", re.ASCII)

REPLICA_KEYS = {
    "url": ("url", "concurrency"),
    "space": ("space", "concurrency"),
    "duplicate": (
        "duplicate",
        "count",
        "hardware",
        "private",
        "sleep_timeout",
        "to_id",
        "concurrency",
        "after",
        "stuck",
    ),
    "local": (
        "local",
        "count",
        "gpus",
        "per_gpu",
        "ready_timeout",
        "python",
        "env",
        "args",
        "inherit_packages",
        "concurrency",
    ),
    "ray": (
        "ray",
        "count",
        "num_gpus",
        "num_cpus",
        "placement",
        "python",
        "env",
        "args",
        "pip",
        "max_restarts",
        "ready_timeout",
        "concurrency",
        "min_count",  # refused with the reason, see `ray`
    ),
}
_KINDS = "url:, space:, duplicate:, local: or ray:"


class ReplicaFields(Fields):
    """The replica sections of the manifest, on top of the typed value readers."""

    def replicas(self, app: Mapping[str, Any]) -> tuple[ReplicaSpec, ...]:
        shorthand = [k for k in ("url", "space") if k in app]
        if shorthand and "replicas" in app:
            self.fail(
                ("app", shorthand[0]),
                f"give either app.{shorthand[0]} or app.replicas, not both",
            )
        if len(shorthand) > 1:
            self.fail(("app", "space"), "give either app.url or app.space, not both")
        if shorthand:
            kind = shorthand[0]
            self.move_template(("app", kind), ("app", "replicas", 0, kind))
            return (self.replica(("app",), {kind: app[kind]}),)
        path: KeyPath = ("app", "replicas")
        items = app.get("replicas")
        if items is None:
            self.fail(
                path,
                f"expected at least one replica: a list of {_KINDS} entries (or pass --app "
                "URL_OR_SPACE)",
            )
        if not isinstance(items, list) or not items:
            self.fail(
                path,
                f"expected a list of replicas ({_KINDS}), got {self.show(path, items)}",
            )
        return tuple(self.replica((*path, i), item) for i, item in enumerate(items))

    def replica(self, path: KeyPath, value: Any) -> ReplicaSpec:
        if isinstance(value, str):
            return self.replica_text(path, value)
        if not isinstance(value, dict):
            self.fail(
                path,
                f"expected a replica ({_KINDS}), got {self.show(path, value)}",
            )
        kinds = [k for k in REPLICA_KEYS if k in value]
        if len(kinds) != 1:
            found = " and ".join(repr(k) for k in kinds) or "none of them"
            self.fail(
                path,
                f"expected exactly one of {_KINDS} in each replica, found {found}",
            )
        kind = kinds[0]
        entry = self.section(path, value, REPLICA_KEYS[kind])
        concurrency = self.optional_int((*path, "concurrency"), entry.get("concurrency"), 1)
        target = (*path, kind)
        if kind == "url":
            return UrlReplica(url=self.url(target, entry["url"]), concurrency=concurrency)
        if kind == "space":
            return SpaceReplica(space=self.space(target, entry["space"]), concurrency=concurrency)
        if kind == "duplicate":
            min_count, count = self.elastic_count((*path, "count"), entry.get("count", 1))
            sleep = entry.get("sleep_timeout")
            to_id = entry.get("to_id")
            hardware = entry.get("hardware")
            return DuplicateReplica(
                space=self.space(target, entry["duplicate"]),
                count=count,
                min_count=min_count,
                hardware=None if hardware is None else self.text((*path, "hardware"), hardware),
                private=self.boolean((*path, "private"), entry.get("private", True)),
                sleep_timeout=None
                if sleep is None
                else self.duration((*path, "sleep_timeout"), sleep),
                to_id=None if to_id is None else self.text((*path, "to_id"), to_id),
                concurrency=concurrency,
                after=self.choice((*path, "after"), entry.get("after", "pause"), DUPLICATE_AFTER),
                stuck=self.choice((*path, "stuck"), entry.get("stuck", "restart"), DUPLICATE_STUCK),
            )
        count = self.integer((*path, "count"), entry.get("count", 1), 1)
        if kind == "ray":
            return self.ray_replica(path, entry, count, concurrency)
        return self.local(path, entry, count, concurrency)

    def elastic_count(self, path: KeyPath, value: Any) -> tuple[int | None, int]:
        """`count: 3` (fixed: (None, 3)) or `count: {min: 1, max: 4}` (elastic: (1, 4))."""
        if not isinstance(value, dict):
            return None, self.integer(path, value, 1)
        bounds = self.section(path, value, ("min", "max"))
        if "max" not in bounds:
            self.fail(
                path, "an elastic count needs max: the most copies to run, e.g. {min: 1, max: 4}"
            )
        most = self.integer((*path, "max"), bounds["max"], 1)
        least = self.integer((*path, "min"), bounds.get("min", 0), 0)
        if least > most:
            self.fail(path, f"min ({least}) is more than max ({most})")
        return least, most

    def ray_replica(
        self, path: KeyPath, entry: dict[str, Any], count: int, concurrency: int | None
    ) -> RayReplica:
        if "min_count" in entry:
            self.fail(
                (*path, "min_count"),
                f"min_count is not supported: all {count} replicas are reserved together "
                "(one Ray placement group), so a run never goes ahead on fewer than asked; "
                "lower count to what the cluster can hold",
            )
        python = entry.get("python")
        placement = self.choice(
            (*path, "placement"), entry.get("placement", "pack"), tuple(p.value for p in Placement)
        )
        num_gpus = self.number((*path, "num_gpus"), entry.get("num_gpus", 0))
        num_cpus = self.number((*path, "num_cpus"), entry.get("num_cpus", 1))
        if num_gpus == 0 and num_cpus == 0:
            self.fail(
                (*path, "num_cpus"),
                "a ray: replica needs some resource to be placed: give num_cpus or num_gpus "
                "above 0",
            )
        return RayReplica(
            script=self.existing_file((*path, "ray"), entry["ray"], "an app script"),
            count=count,
            num_gpus=num_gpus,
            num_cpus=num_cpus,
            placement=Placement(placement),
            python=None if python is None else self.text((*path, "python"), python),
            env=self.env((*path, "env"), entry.get("env", {})),
            args=self.args((*path, "args"), entry.get("args", [])),
            pip=self.args((*path, "pip"), entry.get("pip", [])),
            max_restarts=self.integer((*path, "max_restarts"), entry.get("max_restarts", 3), 0),
            ready_timeout=self.duration(
                (*path, "ready_timeout"), entry.get("ready_timeout", READY_TIMEOUT)
            ),
            concurrency=concurrency,
        )

    def local(
        self, path: KeyPath, entry: dict[str, Any], count: int, concurrency: int | None
    ) -> LocalReplica:
        target = (*path, "local")
        text = self.text(target, entry["local"])
        space, revision, script = None, None, None
        if _SPACE_AT.fullmatch(text.strip()) and not text.strip().endswith(".py"):
            space, _, rev = text.strip().partition("@")
            revision = rev or None
        else:
            script = self.existing_file(target, text, "an app script")
        gpus = self.gpus((*path, "gpus"), entry.get("gpus"))
        if gpus is not None and "count" in entry:
            self.fail(
                (*path, "count"),
                "give count or gpus, not both: with gpus, the copies are the GPUs x per_gpu",
            )
        if gpus is None and "per_gpu" in entry:
            self.fail((*path, "per_gpu"), "per_gpu applies with gpus: (e.g. gpus: all)")
        if space is None and "inherit_packages" in entry:
            self.fail(
                (*path, "inherit_packages"),
                "inherit_packages applies to a Space run locally (local: owner/name) only",
            )
        python = entry.get("python")
        return LocalReplica(
            script=script,
            space=space,
            revision=revision,
            count=count,
            python=None if python is None else self.text((*path, "python"), python),
            env=self.env((*path, "env"), entry.get("env", {})),
            args=self.args((*path, "args"), entry.get("args", [])),
            concurrency=concurrency,
            ready_timeout=self.duration(
                (*path, "ready_timeout"), entry.get("ready_timeout", LOCAL_READY_TIMEOUT)
            ),
            gpus=gpus,
            per_gpu=self.integer((*path, "per_gpu"), entry.get("per_gpu", 1), 1),
            inherit_packages=self.boolean(
                (*path, "inherit_packages"), entry.get("inherit_packages", False)
            ),
        )

    def gpus(self, path: KeyPath, value: Any) -> tuple[str, ...] | str | None:
        if value is None:
            return None
        if value == ALL_GPUS:
            return ALL_GPUS
        items = value if isinstance(value, list) else [value]
        ids = []
        for i, item in enumerate(items):
            if isinstance(item, bool) or not isinstance(item, (int, str)) or str(item) == "":
                self.fail(
                    (*path, i) if isinstance(value, list) else path,
                    f"expected all, or a list of GPU indices or UUIDs like [0, 1], got "
                    f"{self.show(path, value)}",
                )
            ids.append(str(item).strip())
        if not ids:
            self.fail(path, "expected all, or at least one GPU index like [0, 1], got []")
        if len(set(ids)) != len(ids):
            self.fail(path, f"each GPU once, got {ids}; use per_gpu: N for N copies per GPU")
        return tuple(ids)

    def replica_text(self, path: KeyPath, value: str) -> ReplicaSpec:
        kind = text_kind(value)
        if kind == "local":
            return LocalReplica(script=self.existing_file(path, value, "an app script"))
        if kind == "url":
            return UrlReplica(url=self.url(path, value))
        return SpaceReplica(space=self.space(path, value))


def text_kind(value: str) -> str:
    """A bare replica string: `*.py` is a local script, `http(s)://` a URL, else a Space."""
    if value.endswith(".py"):
        return "local"
    return "url" if "://" in value else "space"
