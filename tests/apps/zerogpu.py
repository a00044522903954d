"""A stand-in for a ZeroGPU Space: its GPU failures, raised exactly as the `spaces`
package (0.51.x) raises them, on a script.

`spaces/zero/gradio.py` builds every failure as `gr.Error(message, title=title,
print_exception=False)` (title and print_exception only where the installed gradio takes
them) and every progress note as `gr.Info`/`gr.Warning`/`gr.Success(message,
title=...)`; the messages below are those of `spaces/zero/client.py` and `wrappers.py`.

* /generate(prompt): logs "Waiting for a GPU to become available" and "Successfully
  acquired a GPU" (title "ZeroGPU queue"), takes `ZEROGPU_TASK_SECONDS` (default 0.05),
  then answers `done: <prompt>`, unless:
  - the quota is spent: `ZEROGPU_QUOTA_RUNS` (default: unlimited) successful calls use it
    up; the next call starts the reset clock, `ZEROGPU_RESET_SECONDS` (default 3) away,
    and every call before the reset raises "ZeroGPU quota exceeded" with "Try again in
    H:MM:SS" (the time left, as `str(timedelta)`); after it the account has
    `ZEROGPU_QUOTA_AFTER_RESET` (default 1000) runs;
  - the prompt names a failure (`<kind>` or `<kind>:<times>`): its first `times` calls
    (default 1; "always" for every call) raise that failure. Kinds: quota, runs_limit,
    no_identity, illegal_duration, pending_credits, queue_timeout, client_error,
    task_aborted, worker_error.
* /calls: JSON of calls per prompt and the quota's state (queue=False).
"""

from __future__ import annotations

import inspect
import json
import os
import threading
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import _compat
import gradio as gr

QUOTA_RUNS = int(os.environ.get("ZEROGPU_QUOTA_RUNS", "0")) or None
RESET_SECONDS = float(os.environ.get("ZEROGPU_RESET_SECONDS", "3"))
AFTER_RESET = int(os.environ.get("ZEROGPU_QUOTA_AFTER_RESET", "1000"))
TASK_SECONDS = float(os.environ.get("ZEROGPU_TASK_SECONDS", "0.05"))
PRO = "https://huggingface.co/subscribe/pro?from=ZeroGPU"
SUFFIX = f"Subscribe to Hugging Face PRO to get 40 min of ZeroGPU quota a day - {PRO}"

_lock = threading.Lock()
_calls: Counter[str] = Counter()
_state: dict[str, Any] = {"runs_left": QUOTA_RUNS, "reset_at": None, "refused": 0, "ok": 0}

FAILURES = {
    "quota": (
        "ZeroGPU quota exceeded",
        "You have exceeded your free ZeroGPU quota (60s requested vs. 0s left). Try again in "
        "0:00:02. " + SUFFIX,
    ),
    "runs_limit": (
        "ZeroGPU quota exceeded",
        "You have exceeded your ZeroGPU runs limit. " + SUFFIX,
    ),
    "no_identity": (
        "ZeroGPU quota exceeded",
        "Space app has reached its GPU limit. Try re-running outside of examples if it "
        "happened after clicking one",
    ),
    "illegal_duration": (
        "ZeroGPU illegal duration",
        "The requested GPU duration (120s) is larger than the maximum allowed",
    ),
    "pending_credits": (
        "ZeroGPU pending credits exceeded",
        "You have too many ZeroGPU credits allocated to running tasks. Try again once some "
        "of those tasks have completed.",
    ),
    "queue_timeout": (
        "ZeroGPU queue timeout",
        f'No GPU was available after 60s. <a href="{PRO}">Subscribe to Pro</a> to get the '
        "highest priority in ZeroGPU queues.",
    ),
    "client_error": ("ZeroGPU client error", "No GPU was available"),
    "task_aborted": ("ZeroGPU worker error", "GPU task aborted"),
    "worker_error": ("ZeroGPU worker error", "RuntimeError"),
}


def error(title: str, message: str) -> gr.Error:
    """As `spaces.zero.gradio.error`."""
    params = inspect.signature(gr.Error).parameters
    kwargs: dict[str, Any] = {}
    if "title" in params:
        kwargs["title"] = title
    if "print_exception" in params:
        kwargs["print_exception"] = False
    return gr.Error(message, **kwargs)


def info(title: str, message: str, level: str = "info") -> None:
    """As `spaces.zero.gradio.info`."""
    cls = {"info": gr.Info, "warning": gr.Warning, "success": getattr(gr, "Success", gr.Info)}
    modal = cls[level]
    kwargs = {"title": title} if "title" in inspect.signature(modal).parameters else {}
    modal(message, **kwargs)


def _scripted(prompt: str, calls: int) -> None:
    kind, _, times = prompt.partition(":")
    if kind not in FAILURES:
        return
    if times == "always" or calls <= int(times or 1):
        title, message = FAILURES[kind]
        raise error(title, message)


def _take_quota() -> None:
    now = time.monotonic()
    with _lock:
        reset_at = _state["reset_at"]
        if reset_at is not None and now >= reset_at:
            _state.update(runs_left=AFTER_RESET, reset_at=None)
        if _state["runs_left"] is None or _state["runs_left"] > 0:
            if _state["runs_left"] is not None:
                _state["runs_left"] -= 1
            _state["ok"] += 1
            return
        if _state["reset_at"] is None:
            _state["reset_at"] = now + RESET_SECONDS
        _state["refused"] += 1
        wait = timedelta(seconds=max(1, round(_state["reset_at"] - now + 0.5)))
    raise error(
        "ZeroGPU quota exceeded",
        f"You have exceeded your free ZeroGPU quota (60s requested vs. 0s left). Try again "
        f"in {wait}. {SUFFIX}",
    )


def generate(prompt: str) -> str:
    with _lock:
        _calls[prompt] += 1
        calls = _calls[prompt]
    info("ZeroGPU queue", "Waiting for a GPU to become available")
    _scripted(prompt, calls)
    _take_quota()
    info("ZeroGPU queue", "Successfully acquired a GPU", level="success")
    time.sleep(TASK_SECONDS)
    return f"done: {prompt}"


def calls() -> str:
    with _lock:
        return json.dumps({"calls": dict(_calls), **_state, "reset_at": None})


with gr.Blocks(title="zerogpu") as demo:
    prompt = gr.Textbox(label="Prompt")
    out = gr.Textbox(label="Output")
    gr.Button("Generate").click(generate, inputs=prompt, outputs=out, api_name="generate")
    counts = gr.Textbox(label="Calls")
    gr.Button("Calls").click(calls, inputs=None, outputs=counts, api_name="calls", queue=False)

if __name__ == "__main__":
    _compat.launch(demo, show_error=True)
