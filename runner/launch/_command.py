"""How an app script is started as a replica: the command, the environment, the folder.

The one recipe every launcher uses (local copies here, cluster nodes elsewhere): the
script runs under spacerun's bootstrap (`_bootstrap.py`, executed by path by the
replica's own interpreter, importing nothing of spacerun), which makes every gradio
`launch()` bind to `host:port` whatever the script passes.

    command = app_command(Path("app.py"), host="127.0.0.1", port=7861, gpu="0")
    subprocess.Popen(command.argv, cwd=command.cwd, env={**os.environ, **command.env})

A launcher on another machine ships `bootstrap_source()` there and passes its path as
`bootstrap=`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["BOOTSTRAP", "AppCommand", "app_command", "bootstrap_source"]

#: The launcher file; run it as `python BOOTSTRAP SCRIPT [ARGS...]`.
BOOTSTRAP = Path(__file__).resolve().with_name("_bootstrap.py")


@dataclass(frozen=True, slots=True, kw_only=True)
class AppCommand:
    """What to run for one copy: `argv` in `cwd`, with `env` set on top of the
    environment the launcher inherits."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


def app_command(
    script: Path,
    *,
    host: str,
    port: int,
    python: str | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    gpu: str | None = None,
    bootstrap: Path | str = BOOTSTRAP,
) -> AppCommand:
    """The command that starts `script` listening on `host:port`, with `python`
    (default: the interpreter running spacerun), the user's `env` added and, with `gpu`,
    `CUDA_VISIBLE_DEVICES` set to it. The host and port always win over `env`."""
    interpreter = python or sys.executable
    # A relative interpreter path means relative to here, not to the script's folder.
    if os.sep in interpreter:
        interpreter = os.path.abspath(interpreter)
    script = script.resolve()
    variables = {"GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    variables.update(env or {})
    if gpu is not None:
        variables["CUDA_VISIBLE_DEVICES"] = gpu
    # Ours win: readiness and the replica's url depend on them. The GRADIO_ pair also
    # reaches apps that read it themselves (for uvicorn.run, say).
    variables.update(
        SPACERUN_HOST=host,
        SPACERUN_PORT=str(port),
        GRADIO_SERVER_NAME=host,
        GRADIO_SERVER_PORT=str(port),
    )
    return AppCommand(
        argv=(interpreter, str(bootstrap), str(script), *args),
        cwd=script.parent,
        env=variables,
    )


def bootstrap_source() -> str:
    """The launcher's text, for a launcher that starts apps on another machine."""
    return BOOTSTRAP.read_text(encoding="utf-8")
