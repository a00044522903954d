"""The seed guide's calls on a real gradio 3.50.2 server (`ws`), made with `jobs` and
with gradio_client 1.13.3 (websockets 13.1: the last client that speaks `ws`, in its own
venv), compared call by call: the same harness as test_old_gradio.py uses for 4.x+, on
`tests/old_gradio/apps/seed.py`, which runs on 3.x too."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from support import seed_calls as calls_module
from support.apps import RunningApp
from support.old_gradio import OldApps, venv_python
from support.seed_calls import CALL_NAMES, EXPECTED, seed_calls

from jobs import Client, handle_file

pytestmark = pytest.mark.timeout(600)

_POSITIONAL_ONLY = (
    "gradio_client 1.13.3 calls a 3.x endpoint with positional arguments only, every one "
    "required (ValueError 'Expected 3 arguments, got 0'); jobs names each parameter after "
    "its label and takes its component's initial value as its default, as on 4.x+"
)
#: Where gradio_client 1.13.3 answers otherwise, and why jobs keeps its answer.
KEPT_DIFFERENCES: dict[str, str] = {
    "keyword": _POSITIONAL_ONLY,
    "defaults": _POSITIONAL_ONLY,
    "default_overridden": _POSITIONAL_ONLY,
    "file_in_out": (
        "gradio_client 1.13.3 takes a 3.x file input as a path string only: the guide's "
        "handle_file(path) fails there (TypeError); jobs takes both, on every version"
    ),
    "app_error": (
        "gradio_client 1.13.3 raises a bare ValueError with the app's message; jobs raises "
        "AppError (a ValueError too, so the same except clause catches it) as on 4.x+"
    ),
    "cancel_queued": (
        "gradio_client's cancel() of a started, non-generator job returns True and abandons "
        "it while the app runs it to the end; jobs returns False as the guide says and the "
        "job's result still arrives (as on 4.x+)"
    ),
}


@pytest.fixture(scope="module")
def seed3(old_apps: OldApps) -> RunningApp:
    return old_apps.get("3.50.2")


@pytest.fixture(scope="module")
def our_answers(seed3: RunningApp) -> dict[str, Any]:
    with Client(seed3.url) as client:
        assert client.schema.dialect.name == "ws"
        return seed_calls(client, partial(Client, seed3.url), handle_file)


@pytest.mark.parametrize("call", CALL_NAMES)
def test_seed_guide_call_on_3_50_2(our_answers: dict[str, Any], call: str) -> None:
    """Each of the guide's calls gives the guide's answer on gradio 3.x too."""
    assert our_answers[call] == EXPECTED[call]


def test_same_answers_as_gradio_client_1_13_3(
    seed3: RunningApp, our_answers: dict[str, Any]
) -> None:
    """gradio_client 1.13.3 and jobs agree on every call but the differences kept (each
    with its reason in KEPT_DIFFERENCES)."""
    script = Path(calls_module.__file__)
    done = subprocess.run(
        [venv_python("gc-1.13.3"), str(script), seed3.url],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=script.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    reference = json.loads(done.stdout.strip().splitlines()[-1])
    differ = {call for call in CALL_NAMES if reference[call] != our_answers[call]}
    agree = len(CALL_NAMES) - len(differ)
    print(f"gradio 3.50.2: {agree} of {len(CALL_NAMES)} calls agree; differ: {sorted(differ)}")
    assert differ == set(KEPT_DIFFERENCES), {
        call: (reference[call], our_answers[call]) for call in differ
    }
