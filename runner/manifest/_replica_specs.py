"""The manifest model of `app.replicas` (but `ray:`, in `runner.manifest._ray_spec`):
one class per kind, each carrying what varies by kind — its `kind` (the key the
manifest spells it with, and the launcher `runner.launch` opens it with), its rank when
the API is read before a run (`probe_rank`, `for_validation`), and how it is written
back as data (`to_data`). A new kind is a class here and a launcher there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Union

from ._durations import format_duration
from ._ray_spec import RayReplica, dump_process

__all__ = [
    "ALL_GPUS",
    "LOCAL_READY_TIMEOUT",
    "DuplicateReplica",
    "LocalReplica",
    "ReplicaSpec",
    "SpaceReplica",
    "UrlReplica",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class UrlReplica:
    """A running Gradio server at `url` (http:// or https://)."""

    kind: ClassVar[str] = "url"
    #: A server already up, nothing to start: the first choice to read the API from.
    probe_rank: ClassVar[int] = 0

    url: str
    #: Jobs in flight on this replica; None means `run.concurrency`.
    concurrency: int | None = None

    def for_validation(self) -> UrlReplica:
        """The replica validation reads the API from: this one."""
        return self

    def to_data(self) -> dict[str, Any]:
        return {"url": self.url}


@dataclass(frozen=True, slots=True, kw_only=True)
class SpaceReplica:
    """A Hugging Face Space, `owner/name`, used as it is."""

    kind: ClassVar[str] = "space"
    probe_rank: ClassVar[int] = 1

    space: str
    concurrency: int | None = None

    def for_validation(self) -> SpaceReplica:
        return self

    def to_data(self) -> dict[str, Any]:
        return {"space": self.space}


@dataclass(frozen=True, slots=True, kw_only=True)
class DuplicateReplica:
    """`count` copies of the Space `space` in the user's account (reused when they exist).

    With `min_count` (`count: {min: N, max: M}`) the copies are elastic: `min_count` are
    started with the run, and up to `count` while the backlog needs them."""

    kind: ClassVar[str] = "duplicate"
    probe_rank: ClassVar[int] = 2

    space: str
    count: int = 1
    #: The fewest copies kept running (`count: {min: N, ...}`); None: all `count` run.
    min_count: int | None = None
    hardware: str | None = None
    private: bool = True
    #: Seconds of inactivity before Hugging Face puts the copies to sleep.
    sleep_timeout: float | None = None
    #: Name of the copy (`name` or `owner/name`); copies 2.. get `-2`, `-3`, ... appended.
    to_id: str | None = None
    concurrency: int | None = None
    #: What becomes of the copies when the run ends (`DUPLICATE_AFTER`): "pause" (paid
    #: hardware is paused, and restarted by the next run), "sleep" (left to sleep after
    #: `sleep_timeout`), "keep" (left running).
    after: str = "pause"
    #: What is done with a copy that answers but finishes no job (`DUPLICATE_STUCK`):
    #: "restart" it through the Hub, "factory_reboot" it (rebuilt from scratch), or
    #: "leave" it (only said).
    stuck: str = "restart"

    def for_validation(self) -> SpaceReplica:
        """The source Space: the same API, and nothing to create."""
        return SpaceReplica(space=self.space)

    def to_data(self) -> dict[str, Any]:
        count: Any = self.count
        if self.min_count is not None:
            count = {"min": self.min_count, "max": self.count}
        out: dict[str, Any] = {"duplicate": self.space, "count": count, "private": self.private}
        if self.hardware is not None:
            out["hardware"] = self.hardware
        if self.sleep_timeout is not None:
            out["sleep_timeout"] = format_duration(self.sleep_timeout)
        if self.to_id is not None:
            out["to_id"] = self.to_id
        out["after"] = self.after
        if self.stuck != "restart":
            out["stuck"] = self.stuck
        return out


#: `gpus: all`: every GPU of the machine, found when the replicas start.
ALL_GPUS = "all"
#: A script may load a model for minutes before it listens.
LOCAL_READY_TIMEOUT = 600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalReplica:
    """Processes of a Gradio app that spacerun starts and stops itself: an app `script`,
    or the files of the Space `space` (at `revision`) in a virtual environment of its own.

    `count` copies; or, with `gpus`, `per_gpu` copies on each device (each copy sees only
    its own through CUDA_VISIBLE_DEVICES)."""

    kind: ClassVar[str] = "local"
    #: Must be started first: read the API from it only when nothing else is given.
    probe_rank: ClassVar[int] = 3

    script: Path | None = None
    #: A Space id `owner/name` whose files are downloaded and run (instead of `script`).
    space: str | None = None
    #: The Space's branch, tag or commit; None means its main branch.
    revision: str | None = None
    count: int = 1
    #: The interpreter (for a Space: the one its virtual environment is made from);
    #: None means the Python that runs spacerun (a Space: its README's python_version).
    python: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    args: tuple[str, ...] = ()
    concurrency: int | None = None
    #: Seconds a copy may take from start until it answers.
    ready_timeout: float = LOCAL_READY_TIMEOUT
    #: Device ids for CUDA_VISIBLE_DEVICES, or `ALL_GPUS`; None runs `count` copies.
    gpus: tuple[str, ...] | str | None = None
    per_gpu: int = 1
    #: A Space's environment also sees the packages of `python`'s environment, and pip
    #: installs only what is missing there (instead of everything, from scratch).
    inherit_packages: bool = False

    @property
    def label(self) -> str:
        """What messages call it: the script's file name, or `Space owner/name`."""
        if self.space is not None:
            return f"Space {self.target}"
        return self.script.name if self.script is not None else "?"

    @property
    def target(self) -> str:
        """The `local:` value: the script's path, or `owner/name[@revision]`."""
        if self.space is not None:
            return self.space + (f"@{self.revision}" if self.revision else "")
        return str(self.script)

    def single(self) -> LocalReplica:
        """One copy of the same app (what validation starts): on the first GPU listed,
        or (`gpus: all`) seeing the machine's GPUs."""
        gpus = self.gpus[:1] if isinstance(self.gpus, tuple) else None
        return replace(self, count=1, gpus=gpus, per_gpu=1)

    def for_validation(self) -> LocalReplica:
        return self.single()

    def to_data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"local": self.target}
        if self.gpus is None:
            out["count"] = self.count
        else:
            out["gpus"] = self.gpus if isinstance(self.gpus, str) else list(self.gpus)
            out["per_gpu"] = self.per_gpu
        out["ready_timeout"] = format_duration(self.ready_timeout)
        out.update(dump_process(self.python, self.env, self.args))
        if self.inherit_packages:
            out["inherit_packages"] = True
        return out


ReplicaSpec = Union[  # noqa: UP007
    UrlReplica, SpaceReplica, DuplicateReplica, LocalReplica, RayReplica
]
