"""What a local replica starts (`LocalAppSpec`), and the error when it does not start."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunnerError

__all__ = ["DEFAULT_READY_TIMEOUT", "LocalAppError", "LocalAppSpec"]

#: A script may load a model for minutes before it listens.
DEFAULT_READY_TIMEOUT = 600.0


class LocalAppError(RunnerError):
    """A local copy exited before it was ready, or did not answer in time.

    `str(err)` names the script, the copy, its port and exit code, says what to do, and
    ends with the last lines of its log (a traceback's last line says what went wrong).
    """

    def __init__(
        self,
        message: str,
        *,
        script: Path,
        index: int | None = None,
        port: int | None = None,
        exit_code: int | None = None,
        log_path: Path | None = None,
        log_tail: str = "",
    ) -> None:
        self.script = script
        self.index = index
        self.port = port
        self.exit_code = exit_code
        self.log_path = log_path
        self.log_tail = log_tail
        super().__init__(message)


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalAppSpec:
    """What to start: copies of `python script *args` with `env` added.

    Without `gpus`, `count` copies; with `gpus` (device ids for CUDA_VISIBLE_DEVICES),
    `per_gpu` copies on each of them, and `count` is left at 1."""

    script: Path
    count: int = 1
    python: str | None = None  # default: the interpreter running spacerun
    env: Mapping[str, str] = field(default_factory=dict)
    args: Sequence[str] = ()
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    host: str = "127.0.0.1"
    gpus: Sequence[str] = ()
    per_gpu: int = 1
    #: Seconds between "still starting" lines.
    progress_every: float = 20.0
    #: Index of the first copy (copies are named local-<index>).
    first_index: int = 1
    #: What messages call the app (default: the script's file name).
    label: str | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}")
        if self.gpus and self.count != 1:
            raise ValueError("give count or gpus, not both: with gpus, copies = gpus x per_gpu")
        if self.per_gpu < 1:
            raise ValueError(f"per_gpu must be at least 1, got {self.per_gpu}")
        if not self.ready_timeout > 0:
            raise ValueError(f"ready_timeout must be positive, got {self.ready_timeout}")

    @property
    def copies(self) -> int:
        return len(self.gpus) * self.per_gpu if self.gpus else self.count

    def gpu_of(self, offset: int) -> str | None:
        """The device of the copy `offset` places after the first (0-based)."""
        return self.gpus[offset // self.per_gpu] if self.gpus else None

    @property
    def display(self) -> str:
        return self.label or self.script.name
