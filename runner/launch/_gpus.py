"""`gpus: all`: the GPUs this process may use, as ids for CUDA_VISIBLE_DEVICES.

When CUDA_VISIBLE_DEVICES is set, it is the list (its entries are indices or UUIDs in
the machine's numbering, so a child given one of them sees exactly that device; empty or
`-1` means none). Otherwise `nvidia-smi -L` lists the devices: `GPU 0: NVIDIA A100 ...`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import anyio

from ._spec import LocalAppError

__all__ = ["find_gpus", "parse_nvidia_smi", "parse_visible_devices"]

_NVIDIA_SMI_LINE = re.compile(r"^GPU (\d+):", re.MULTILINE)
_NVIDIA_SMI_TIMEOUT = 30.0


def parse_visible_devices(value: str) -> tuple[str, ...]:
    """CUDA_VISIBLE_DEVICES as a list; CUDA stops at the first invalid entry (`-1`)."""
    out: list[str] = []
    for item in (part.strip() for part in value.split(",")):
        if not item or item.startswith("-"):
            break
        out.append(item)
    return tuple(out)


def parse_nvidia_smi(listing: str) -> tuple[str, ...]:
    """The indices in `nvidia-smi -L` output."""
    return tuple(_NVIDIA_SMI_LINE.findall(listing))


async def find_gpus(
    *, script: Path, label: str, environ: Mapping[str, str] | None = None
) -> tuple[str, ...]:
    """The GPUs for `gpus: all`; LocalAppError naming `script` when there are none."""
    env = os.environ if environ is None else environ
    visible = env.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        found = parse_visible_devices(visible)
        if found:
            return found
        why = f"CUDA_VISIBLE_DEVICES is {visible!r}, which hides every GPU"
    else:
        found, why = await _ask_nvidia_smi()
        if found:
            return found
    raise LocalAppError(
        f"gpus: all for {label} found no GPU: {why}; list the devices (gpus: [0, 1]), "
        "set CUDA_VISIBLE_DEVICES, or drop gpus: and give count:",
        script=script,
    )


async def _ask_nvidia_smi() -> tuple[tuple[str, ...], str]:
    try:
        with anyio.fail_after(_NVIDIA_SMI_TIMEOUT):
            result = await anyio.run_process(["nvidia-smi", "-L"], check=False)
    except FileNotFoundError:
        return (), "nvidia-smi is not installed and CUDA_VISIBLE_DEVICES is not set"
    except TimeoutError:
        return (), f"nvidia-smi -L did not answer within {_NVIDIA_SMI_TIMEOUT:g} s"
    listing = result.stdout.decode(errors="replace")
    if result.returncode != 0:
        said = (result.stderr.decode(errors="replace") or listing).strip().splitlines()
        return (), f"nvidia-smi -L failed ({said[-1] if said else result.returncode})"
    found = parse_nvidia_smi(listing)
    return found, "" if found else "nvidia-smi -L lists no GPU"
