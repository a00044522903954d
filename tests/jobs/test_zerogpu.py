"""ZeroGPU failures are told apart by their exact text, as the `spaces` package (0.51.x,
`spaces/zero/client.py` and `wrappers.py`) raises them, older wordings included."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs import AppError, QuotaExceeded, ZeroGpuError, ZeroGpuKind
from jobs._protocol.zerogpu import classify_zerogpu, parse_timedelta, zerogpu_error

PRO = "https://huggingface.co/subscribe/pro?from=ZeroGPU"
LINK = (
    '<a style="white-space: nowrap;text-underline-offset: 2px;color: var(--body-text-color)" '
    'href="https://huggingface.co/join">Create a free account</a>'
)

CASES = [
    # (title, message, kind, wait, requested, left)
    (
        "ZeroGPU quota exceeded",
        "You have exceeded your free ZeroGPU quota (60s requested vs. 56s left). Try again in "
        f"0:09:48. Subscribe to Hugging Face PRO to get 40 min of ZeroGPU quota a day - {PRO}",
        ZeroGpuKind.QUOTA,
        588.0,
        60,
        56,
    ),
    (
        "ZeroGPU quota exceeded",
        "You have exceeded your Pro ZeroGPU quota (120s requested vs. 30s left). Try again in "
        "1 day, 0:00:00. Add credits to keep using ZeroGPU. $1 for 10 minutes of ZeroGPU "
        "inference - https://huggingface.co/settings/billing?add-credits=true",
        ZeroGpuKind.QUOTA,
        86400.0,
        120,
        30,
    ),
    (
        "ZeroGPU quota exceeded",
        "You have exceeded your ZeroGPU quota (60s requested vs. 0s left). Try again in "
        "0:00:03.500000. ",
        ZeroGpuKind.QUOTA,
        3.5,
        60,
        0,
    ),
    (
        "ZeroGPU quota exceeded",
        "You have exceeded your GPU quota (46s left vs. 60s requested). Sign-up on Hugging Face "
        "to get more quotas or retry in 0:09:48.",
        ZeroGpuKind.QUOTA,
        588.0,
        60,
        46,
    ),
    (
        None,
        f"You have exceeded your GPU quota (60s requested vs. 56s left). {LINK} to get more "
        "usage quota.",
        ZeroGpuKind.QUOTA,
        None,
        60,
        56,
    ),
    (
        "ZeroGPU quota exceeded",
        "You have exceeded your ZeroGPU runs limit. Authenticate with a Hugging Face token for "
        "more quota - https://huggingface.co/settings/tokens",
        ZeroGpuKind.RUNS_LIMIT,
        None,
        None,
        None,
    ),
    (
        "ZeroGPU quota exceeded",
        "Space app has reached its GPU limit. Try re-running outside of examples if it "
        "happened after clicking one",
        ZeroGpuKind.NO_IDENTITY,
        None,
        None,
        None,
    ),
    (
        "ZeroGPU illegal duration",
        # No space before "Subscribe": the package concatenates them so.
        "The requested GPU duration (120s) is larger than the maximum allowedSubscribe to "
        f"Hugging Face PRO to allow GPU tasks up to 40 min - {PRO}",
        ZeroGpuKind.ILLEGAL_DURATION,
        None,
        None,
        None,
    ),
    (
        "ZeroGPU pending credits exceeded",
        "You have too many ZeroGPU credits allocated to running tasks. Try again once some of "
        "those tasks have completed.",
        ZeroGpuKind.PENDING_CREDITS,
        None,
        None,
        None,
    ),
    (
        # Anonymous callers get the queue timeout under the quota title.
        "ZeroGPU quota exceeded",
        "No GPU was available after 60s. Try re-running outside of examples if it happened "
        "after clicking one",
        ZeroGpuKind.QUEUE_TIMEOUT,
        None,
        None,
        None,
    ),
    (
        "ZeroGPU queue timeout",
        f'No GPU was available after 60s. <a href="{PRO}">Subscribe to Pro</a> to get the '
        "highest priority in ZeroGPU queues.",
        ZeroGpuKind.QUEUE_TIMEOUT,
        None,
        None,
        None,
    ),
    ("ZeroGPU client error", "No GPU was available", ZeroGpuKind.CLIENT_ERROR, None, None, None),
    (
        "ZeroGPU client error",
        "Expired ZeroGPU proxy token",
        ZeroGpuKind.CLIENT_ERROR,
        None,
        None,
        None,
    ),
    ("ZeroGPU worker error", "GPU task aborted", ZeroGpuKind.TASK_ABORTED, None, None, None),
    ("ZeroGPU worker error", "RuntimeError", ZeroGpuKind.WORKER_ERROR, None, None, None),
]


@pytest.mark.parametrize(("title", "message", "kind", "wait", "requested", "left"), CASES)
def test_each_zerogpu_message_is_classified(
    title: str | None,
    message: str,
    kind: ZeroGpuKind,
    wait: float | None,
    requested: int | None,
    left: int | None,
) -> None:
    """The message decides the kind (the title only when the message is not known)."""
    failure = classify_zerogpu(message, title)
    assert failure is not None
    assert (failure.kind, failure.wait, failure.requested, failure.left) == (
        kind,
        wait,
        requested,
        left,
    )


@pytest.mark.parametrize(
    ("message", "title"),
    [("boom", "Error"), ("custom failure: no GPU here", None), (None, None), ("", "Warning")],
)
def test_ordinary_app_errors_are_not_zerogpu(message: str | None, title: str | None) -> None:
    """A `gr.Error` of the app's own is left alone."""
    assert classify_zerogpu(message, title) is None
    assert zerogpu_error(message, title, where="/predict") is None


@pytest.mark.parametrize(
    "seconds", [0, 3.5, 588, 588.5, 86400, 2 * 86400 + 3 * 3600 + 4 * 60 + 5, 0.25]
)
def test_timedelta_text_round_trips(seconds: float) -> None:
    """Python's `str(timedelta)` in any of its shapes reads back as seconds."""
    assert parse_timedelta(str(timedelta(seconds=seconds))) == pytest.approx(seconds)


def test_quota_error_is_a_transient_app_error_with_the_wait() -> None:
    """QuotaExceeded is an AppError (so callers of gr.Error catch it) that may pass."""
    error = zerogpu_error(CASES[0][1], CASES[0][0], where="/predict", event_id="e1")
    assert isinstance(error, QuotaExceeded) and isinstance(error, AppError)
    assert error.transient and error.retry_after == 588.0
    assert (error.requested, error.left, error.title) == (60, 56, "ZeroGPU quota exceeded")
    assert "resets in 0:09:48" in str(error)


@pytest.mark.parametrize(
    ("index", "transient"),
    [(6, False), (7, False), (8, True), (9, True), (11, True), (13, True), (14, False)],
)
def test_other_zerogpu_errors_say_whether_to_retry(index: int, transient: bool) -> None:
    """No identity, illegal duration and the app's own failure are final; the rest may pass."""
    title, message, kind = CASES[index][:3]
    error = zerogpu_error(message, title, where="/predict")
    assert isinstance(error, ZeroGpuError) and not isinstance(error, QuotaExceeded)
    assert (error.kind, error.transient) == (kind.value, transient)
    assert "<a" not in str(error)
