"""ZeroGPU failures, told apart by their text (sans-IO).

A ZeroGPU Space reports every GPU-side failure as an ordinary `gr.Error` raised by the
`spaces` package (0.51.x: `spaces/zero/client.py`, `spaces/zero/wrappers.py`), so the
client sees a failed `process_completed` whose `output.error` is the message and whose
title names the case. Titles are not reliable (the anonymous queue timeout is titled
"ZeroGPU quota exceeded"; gradio < 4.x sends no title at all), so the message is read
first and the title only breaks ties. Nothing here does I/O.

    failure = classify_zerogpu(message_text, title)   # None: not a ZeroGPU failure
    if failure is not None and failure.kind is ZeroGpuKind.QUOTA: ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

from ..errors import QuotaExceeded, ZeroGpuError

__all__ = [
    "ZeroGpuFailure",
    "ZeroGpuKind",
    "classify_zerogpu",
    "parse_timedelta",
    "zerogpu_error",
]


class ZeroGpuKind(str, Enum):
    """What a ZeroGPU failure means, and so what a client should do about it."""

    #: The account's daily GPU quota is spent: wait until `wait` (or the quota's reset).
    QUOTA = "quota"
    #: The account ran too many GPU tasks: wait for the quota's reset.
    RUNS_LIMIT = "runs_limit"
    #: The request carried no identity (no HF token reached the Space): pass one.
    NO_IDENTITY = "no_identity"
    #: The task asks for more GPU time than this account may ever get: the row cannot run.
    ILLEGAL_DURATION = "illegal_duration"
    #: Too many tasks of the account hold credits at once: send fewer at a time.
    PENDING_CREDITS = "pending_credits"
    #: No GPU became free in time (overload): fewer at a time, back off, retry.
    QUEUE_TIMEOUT = "queue_timeout"
    #: A passing failure of the ZeroGPU client (no GPU right now, an expired proxy token).
    CLIENT_ERROR = "client_error"
    #: The GPU worker died or ran past its duration: retry once.
    TASK_ABORTED = "task_aborted"
    #: The app's own code raised on the GPU worker (the message is the exception's class).
    WORKER_ERROR = "worker_error"


@dataclass(frozen=True, slots=True, kw_only=True)
class ZeroGpuFailure:
    """One classified failure. `wait` is in seconds (None when the message gives none);
    `requested`/`left` are the account's GPU seconds, when the message gives them."""

    kind: ZeroGpuKind
    wait: float | None = None
    requested: int | None = None
    left: int | None = None


# Python's str(timedelta): "0:09:48", "0:09:48.500000", "1 day, 0:00:00", "2 days, 3:04:05".
_TIMEDELTA = r"(?:(?P<days>\d+) days?, )?(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d(?:\.\d+)?)"
_WAIT = re.compile(r"(?:try again|retry) in " + _TIMEDELTA, re.IGNORECASE)
_REQUESTED_LEFT = re.compile(r"\((?P<requested>\d+)s requested vs\. (?P<left>\d+)s left\)")
_LEFT_REQUESTED = re.compile(r"\((?P<left>\d+)s left vs\. (?P<requested>\d+)s requested\)")

# Message shapes, most specific first; each is searched case-insensitively.
_BY_MESSAGE: tuple[tuple[re.Pattern[str], ZeroGpuKind], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind)
    for pattern, kind in (
        (r"exceeded your ZeroGPU runs limit", ZeroGpuKind.RUNS_LIMIT),
        (r"exceeded your (?:[\w ]*ZeroGPU|GPU) quota", ZeroGpuKind.QUOTA),
        (r"Space app has reached its GPU limit", ZeroGpuKind.NO_IDENTITY),
        (
            r"requested GPU duration \(\d+s\) is larger than the maximum",
            ZeroGpuKind.ILLEGAL_DURATION,
        ),
        (r"too many ZeroGPU credits allocated", ZeroGpuKind.PENDING_CREDITS),
        (r"No GPU was available after \d+s", ZeroGpuKind.QUEUE_TIMEOUT),
        (r"^No GPU was available$", ZeroGpuKind.CLIENT_ERROR),
        (r"Expired ZeroGPU proxy token", ZeroGpuKind.CLIENT_ERROR),
        (r"^GPU task aborted$", ZeroGpuKind.TASK_ABORTED),
    )
)
_BY_TITLE = {
    "zerogpu quota exceeded": ZeroGpuKind.QUOTA,
    "zerogpu illegal duration": ZeroGpuKind.ILLEGAL_DURATION,
    "zerogpu pending credits exceeded": ZeroGpuKind.PENDING_CREDITS,
    "zerogpu queue timeout": ZeroGpuKind.QUEUE_TIMEOUT,
    "zerogpu client error": ZeroGpuKind.CLIENT_ERROR,
    "zerogpu worker error": ZeroGpuKind.WORKER_ERROR,
}


def classify_zerogpu(message: str | None, title: str | None) -> ZeroGpuFailure | None:
    """The ZeroGPU failure a `gr.Error`'s message and title describe, or None."""
    text = (message or "").strip()
    kind = _kind_by_message(text)
    if kind is None:
        kind = _BY_TITLE.get((title or "").strip().lower())
    if kind is None:
        return None
    if kind not in (ZeroGpuKind.QUOTA, ZeroGpuKind.RUNS_LIMIT):
        return ZeroGpuFailure(kind=kind)
    wait = _WAIT.search(text)
    amounts = _REQUESTED_LEFT.search(text) or _LEFT_REQUESTED.search(text)
    return ZeroGpuFailure(
        kind=kind,
        wait=_seconds(wait) if wait else None,
        requested=int(amounts["requested"]) if amounts else None,
        left=int(amounts["left"]) if amounts else None,
    )


#: What to do, per kind, for the error's message.
_ADVICE = {
    ZeroGpuKind.NO_IDENTITY: (
        "the Space got no HF identity, so it counts the request against the Space's own "
        "limit; pass hf_token (or set HF_TOKEN) so your account's quota is used"
    ),
    ZeroGpuKind.ILLEGAL_DURATION: (
        "the task asks for more GPU time than this account may ever use; this input cannot "
        "run here (a PRO account allows longer tasks)"
    ),
    ZeroGpuKind.PENDING_CREDITS: "too many tasks of this account at once; send fewer at a time",
    ZeroGpuKind.QUEUE_TIMEOUT: "no GPU became free in time; send fewer at once and retry later",
    ZeroGpuKind.CLIENT_ERROR: "a passing ZeroGPU failure; retry",
    ZeroGpuKind.TASK_ABORTED: "the GPU worker stopped the task (it died or ran too long)",
    ZeroGpuKind.WORKER_ERROR: "the app's code failed on the GPU worker",
}
_TRANSIENT = {
    ZeroGpuKind.PENDING_CREDITS,
    ZeroGpuKind.QUEUE_TIMEOUT,
    ZeroGpuKind.CLIENT_ERROR,
    ZeroGpuKind.TASK_ABORTED,
}


def zerogpu_error(
    message: str | None, title: str | None, *, where: str, event_id: str | None = None
) -> ZeroGpuError | None:
    """The error for a failed job whose `gr.Error` is a ZeroGPU failure, or None."""
    failure = classify_zerogpu(message, title)
    if failure is None:
        return None
    said = re.sub(r"<[^>]+>", "", message or "").strip()
    common = {"app_message": message, "title": title, "event_id": event_id}
    if failure.kind in (ZeroGpuKind.QUOTA, ZeroGpuKind.RUNS_LIMIT):
        what = "runs limit" if failure.kind is ZeroGpuKind.RUNS_LIMIT else "GPU quota"
        when = (
            f"it resets in {timedelta(seconds=round(failure.wait))}"
            if failure.wait is not None
            else "the Space did not say when it resets"
        )
        return QuotaExceeded(
            f"{where}: the account's ZeroGPU {what} is spent; {when}. Wait, or use a token "
            f"with more quota. The Space said: {said}",
            kind=failure.kind.value,
            retry_after=failure.wait,
            requested=failure.requested,
            left=failure.left,
            **common,
        )
    return ZeroGpuError(
        f"{where} failed on ZeroGPU: {_ADVICE[failure.kind]}. The Space said: {said}",
        kind=failure.kind.value,
        transient=failure.kind in _TRANSIENT,
        **common,
    )


def parse_timedelta(text: str) -> float | None:
    """Seconds in Python's `str(timedelta)` form (`0:09:48`, `1 day, 0:00:00.5`), or None."""
    match = re.fullmatch(_TIMEDELTA, text.strip())
    return _seconds(match) if match is not None else None


def _seconds(match: re.Match[str]) -> float:
    days = int(match["days"] or 0)
    return days * 86400 + int(match["h"]) * 3600 + int(match["m"]) * 60 + float(match["s"])


def _kind_by_message(text: str) -> ZeroGpuKind | None:
    # The queue timeout may come wrapped in HTML (an <a> link after the sentence).
    plain = re.sub(r"<[^>]+>", "", text)
    for pattern, kind in _BY_MESSAGE:
        if pattern.search(plain):
            return kind
    return None
