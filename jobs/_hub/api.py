"""The Hub calls a batch makes around its Spaces: the account's ZeroGPU quota, the price
list of Space hardware, pausing and restarting a Space.

Each goes through huggingface_hub's `HfApi` (2.4: `get_zero_gpu_quota`,
`list_spaces_hardware`, `pause_space`, `restart_space`) in a worker thread, with errors
translated as in `spaces` (through `calls`). No message carries the token.

    quota = await zerogpu_quota(token=token)          # None: no token, or not allowed
    prices = await hardware_prices()                  # {"t4-small": 0.000111, ...} $/s
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import AuthError
from .calls import call_hub, check_space_id, hub_api

__all__ = ["ZeroGpuQuota", "hardware_prices", "pause_space", "restart_space", "zerogpu_quota"]

logger = logging.getLogger(__name__)

#: Seconds per price unit, as the Hub labels them.
_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}


@dataclass(frozen=True, slots=True, kw_only=True)
class ZeroGpuQuota:
    """The account's ZeroGPU quota, in GPU seconds. `resets_at` is None when the quota
    has not been used yet (nothing to reset)."""

    base: float
    remaining: float
    resets_at: datetime | None
    overquota_used: float | None = None

    def resets_in(self, now: datetime | None = None) -> float | None:
        """Seconds until the reset (0 if it is past), or None."""
        if self.resets_at is None:
            return None
        now = now or datetime.now(timezone.utc)
        return max(0.0, (self.resets_at - now).total_seconds())


async def zerogpu_quota(*, token: str | None, endpoint: str | None = None) -> ZeroGpuQuota | None:
    """The token's ZeroGPU quota (`GET /api/spaces/zero-gpu/quota`), or None when there is
    no token or the token may not read it (a fine-grained token without the "read billing"
    permission gets 401/403): callers then go on without it. Other failures raise."""
    if not token:
        return None
    api = hub_api(endpoint, token)
    try:
        raw = await call_hub(api, "zero-gpu/quota", api.get_zero_gpu_quota)
    except AuthError as exc:
        logger.info("the ZeroGPU quota could not be read with this token: %s", exc.message)
        return None
    return ZeroGpuQuota(
        base=float(raw.base),
        remaining=float(raw.remaining),
        resets_at=raw.resets_at,
        overquota_used=raw.overquota_used,
    )


async def hardware_prices(endpoint: str | None = None) -> dict[str, float]:
    """Space hardware flavor -> US dollars per second of running, from the Hub's public
    list (`GET /api/spaces/hardware`). Raises `JobsError` if the list cannot be read."""
    api = hub_api(endpoint, None)
    flavors = await call_hub(api, "hardware", api.list_spaces_hardware)
    prices: dict[str, float] = {}
    for flavor in flavors:
        unit = _UNIT_SECONDS.get(str(flavor.unit_label).lower())
        if unit is None:
            logger.warning("unknown price unit %r for %s", flavor.unit_label, flavor.name)
            continue
        prices[flavor.name] = float(flavor.unit_cost_usd) / unit
    return prices


async def pause_space(space_id: str, *, token: str | None, endpoint: str | None = None) -> str:
    """Pause the Space (paused time is not billed); return its stage. The token must own it."""
    return await _lifecycle(space_id, token=token, endpoint=endpoint, restart=False)


async def restart_space(
    space_id: str, *, token: str | None, endpoint: str | None = None, factory_reboot: bool = False
) -> str:
    """Restart the Space (after a pause: billing starts again); return its stage. With
    `factory_reboot`, the Hub rebuilds it from scratch (no build cache) first."""
    return await _lifecycle(
        space_id, token=token, endpoint=endpoint, restart=True, factory_reboot=factory_reboot
    )


async def _lifecycle(
    space_id: str,
    *,
    token: str | None,
    endpoint: str | None,
    restart: bool,
    factory_reboot: bool = False,
) -> str:
    if not token:
        raise AuthError(
            f"{'Restarting' if restart else 'Pausing'} Space {space_id} needs the token of "
            "its owner: pass token= or set HF_TOKEN."
        )
    check_space_id(space_id)
    api = hub_api(endpoint, token)
    if restart:
        runtime = await call_hub(
            api, space_id, api.restart_space, space_id, factory_reboot=factory_reboot
        )
    else:
        runtime = await call_hub(api, space_id, api.pause_space, space_id)
    return str(getattr(runtime.stage, "value", runtime.stage))
