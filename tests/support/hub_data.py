"""Data the Hub stand-in answers with: the Space hardware list and a ZeroGPU quota.

`GET /api/spaces/hardware` answers a JSON list with one object per flavor, in the keys
huggingface_hub 2.4 reads into `JobHardwareInfo` (`_jobs_api.py`): `name`, `prettyName`,
`cpu`, `ram`, `ephemeralStorage`, `accelerator` (`type`, `model`, `quantity`, `vram`,
`manufacturer`, or null), `unitCostMicroUSD`, `unitCostUSD`, `unitLabel` ("minute").
The prices are the Hub's published hourly prices as we know them, per minute; they
could not be checked against the live Hub from here, and tests only rely on the shape
and on prices being per minute.

`GET /api/spaces/zero-gpu/quota` answers `{"base", "current", "resetsAt",
"overquotaUsed"}` in GPU seconds (huggingface_hub's `ZeroGpuQuota`), `resetsAt` an ISO
date or null when the quota has not been used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["HARDWARE_LIST", "ZeroGpuQuota", "hardware_entry"]

# name -> (pretty name, cpu, ram, accelerator or None, dollars per hour)
_FLAVORS: dict[str, tuple[str, str, str, tuple[str, str, str] | None, float]] = {
    "cpu-basic": ("CPU Basic", "2 vCPU", "16 GB", None, 0.0),
    "cpu-upgrade": ("CPU Upgrade", "8 vCPU", "32 GB", None, 0.03),
    "t4-small": ("Nvidia T4 - small", "4 vCPU", "15 GB", ("T4", "1", "16 GB"), 0.40),
    "t4-medium": ("Nvidia T4 - medium", "8 vCPU", "30 GB", ("T4", "1", "16 GB"), 0.60),
    "l4x1": ("1x Nvidia L4", "8 vCPU", "30 GB", ("L4", "1", "24 GB"), 0.80),
    "l4x4": ("4x Nvidia L4", "48 vCPU", "186 GB", ("L4", "4", "96 GB"), 3.80),
    "l40sx1": ("1x Nvidia L40S", "8 vCPU", "62 GB", ("L40S", "1", "48 GB"), 1.80),
    "a10g-small": ("Nvidia A10G - small", "4 vCPU", "15 GB", ("A10G", "1", "24 GB"), 1.00),
    "a10g-large": ("Nvidia A10G - large", "12 vCPU", "46 GB", ("A10G", "1", "24 GB"), 1.50),
    "a10g-largex2": ("2x Nvidia A10G - large", "24 vCPU", "92 GB", ("A10G", "2", "48 GB"), 3.00),
    "a100-large": ("Nvidia A100 - large", "12 vCPU", "142 GB", ("A100", "1", "80 GB"), 2.50),
    "h100": ("Nvidia H100", "23 vCPU", "240 GB", ("H100", "1", "80 GB"), 4.50),
}


def hardware_entry(name: str) -> dict[str, Any]:
    pretty, cpu, ram, accelerator, per_hour = _FLAVORS[name]
    micro_per_minute = round(per_hour * 1_000_000 / 60)
    return {
        "name": name,
        "prettyName": pretty,
        "cpu": cpu,
        "ram": ram,
        "ephemeralStorage": "50 GB",
        "accelerator": None
        if accelerator is None
        else {
            "type": "gpu",
            "model": accelerator[0],
            "quantity": accelerator[1],
            "vram": accelerator[2],
            "manufacturer": "Nvidia",
        },
        "unitCostMicroUSD": micro_per_minute,
        "unitCostUSD": micro_per_minute / 1_000_000,
        "unitLabel": "minute",
    }


HARDWARE_LIST = [hardware_entry(name) for name in _FLAVORS]


@dataclass
class ZeroGpuQuota:
    """One account's quota, in GPU seconds."""

    base: float = 1500.0
    current: float = 1500.0
    resets_at: datetime | None = None
    overquota_used: float = 0.0

    def to_json(self) -> dict[str, Any]:
        resets = self.resets_at
        return {
            "base": self.base,
            "current": self.current,
            "resetsAt": None
            if resets is None
            else resets.astimezone(timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "overquotaUsed": self.overquota_used,
        }
