"""Debian's headless chromium, driven by playwright (never playwright's own browser
download), for the tests that open a report; screenshots go to `tests/artifacts/`
(git-ignored) for a person to look at."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = ["ARTIFACTS", "CHROMIUM", "SLOW_MACHINE_MS", "chromium", "require_chromium"]

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
#: Parsing the inlined plotly.js takes a second on a quiet machine, much more on a busy one.
SLOW_MACHINE_MS = 120_000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


#: Set by `.ci/run` (or any CI): there a missing browser fails these tests instead of
#: skipping them, so CI cannot pass without having run them.
REQUIRED = os.environ.get("SPACERUN_REQUIRE_BROWSER") == "1" or os.environ.get("CI") == "true"


def require_chromium() -> None:
    """Skip the test when Debian's chromium is missing (fail it under CI). `./scripts/test`
    installs it when it can (as root with apt); elsewhere the tests are reported as
    skipped with what to install, counted in the summary line."""
    if not Path(CHROMIUM).exists():
        message = f"no {CHROMIUM}: install Debian's chromium (apt-get install -y chromium)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless chromium. Playwright's sync API keeps an event loop running in this
    thread while it is open: a run watched live goes in another thread."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
