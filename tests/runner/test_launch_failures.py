"""Every way a local replica fails to start, through `spacerun run` as a user meets it:
exit status 2, no traceback, and a message naming the replica, the script and what to do.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.cli import spacerun
from support.hub import HubServer

APPS = Path(__file__).resolve().parents[1] / "apps"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


def write_manifest(tmp_path: Path, replica: dict[str, object]) -> Path:
    manifest = tmp_path / "batch.yaml"
    manifest.write_text(
        json.dumps(
            {
                "app": {"replicas": [replica]},
                "inputs": {"rows": [{"text": "a"}]},
                "output": {"dir": str(tmp_path / "run")},
            }
        )
    )
    return manifest


def missing(tmp_path: Path, hub: HubServer) -> tuple[dict[str, object], dict[str, str]]:
    return {"local": "missing_app.py"}, {}


def syntax_error(tmp_path: Path, hub: HubServer) -> tuple[dict[str, object], dict[str, str]]:
    script = tmp_path / "syntax_error.py"
    script.write_text("import gradio as gr\n\ndef broken(:\n    pass\n")
    return {"local": str(script)}, {}


def crash(tmp_path: Path, hub: HubServer) -> tuple[dict[str, object], dict[str, str]]:
    return {"local": str(APPS / "local_broken.py")}, {}


def never_listens(tmp_path: Path, hub: HubServer) -> tuple[dict[str, object], dict[str, str]]:
    return {"local": str(APPS / "local_sleeper.py"), "ready_timeout": "2s"}, {}


def wrong_port(tmp_path: Path, hub: HubServer) -> tuple[dict[str, object], dict[str, str]]:
    replica: dict[str, object] = {
        "local": str(APPS / "wrong_port.py"),
        "env": {"WRONG_PORT_APP_PORT": str(free_port())},
    }
    return replica, {}


def bad_requirement(tmp_path: Path, hub: HubServer) -> tuple[dict[str, object], dict[str, str]]:
    hub.push(
        "alice/broken-reqs",
        {
            "README.md": "---\nsdk: gradio\napp_file: app.py\n---\n",
            "app.py": "import gradio as gr\n",
            "requirements.txt": "no-such-package-for-spacerun==1.0\n",
        },
    )
    env = {
        "HF_ENDPOINT": hub.url,
        "HF_HUB_CACHE": str(tmp_path / "hf"),
        "SPACERUN_CACHE_DIR": str(tmp_path / "cache"),
        "PIP_NO_INDEX": "1",  # offline: the package is simply not found
        # The Hub stand-in is the Hub here (the forms app sets HF_HUB_OFFLINE in-process).
        "HF_HUB_OFFLINE": "0",
    }
    return {"local": "alice/broken-reqs", "inherit_packages": True}, env


Case = Callable[[Path, HubServer], tuple[dict[str, object], dict[str, str]]]
CASES: dict[str, tuple[Case, tuple[str, ...]]] = {
    "missing-script": (
        missing,
        (
            "app.replicas[0].local: expected an app script, but 'missing_app.py' does not exist",
            "fix the path",
        ),
    ),
    "syntax-error": (
        syntax_error,
        (
            "local copy local-1 of syntax_error.py",
            "exited before it was ready; exit code 1",
            "fix what its log below shows",
            "SyntaxError",
        ),
    ),
    "crash-at-import": (
        crash,
        (
            "local copy local-1 of local_broken.py",
            "exited before it was ready",
            "RuntimeError: local_broken: this script fails at import",
        ),
    ),
    "never-listening": (
        never_listens,
        (
            "local copy local-1 of local_sleeper.py",
            "/config within 2 s (stopped it)",
            "raise ready_timeout for this replica",
            "local_sleeper: sleeping, never ready",
        ),
    ),
    "wrong-port": (
        wrong_port,
        (
            "local copy local-1 of wrong_port.py",
            "listens on http://127.0.0.1:",
            "make it listen on $GRADIO_SERVER_NAME:$GRADIO_SERVER_PORT",
        ),
    ),
    "requirement-does-not-install": (
        bad_requirement,
        (
            "Space alice/broken-reqs: installing its requirements failed",
            "fix or pin the requirements",
            "no-such-package-for-spacerun",
        ),
    ),
}


@pytest.mark.timeout(400)
@pytest.mark.parametrize("case", list(CASES))
def test_launch_failure_exits_2_with_a_message_not_a_traceback(
    tmp_path: Path, hub: HubServer, case: str
) -> None:
    make, expected = CASES[case]
    replica, env = make(tmp_path, hub)
    manifest = write_manifest(tmp_path, replica)
    result = spacerun("run", str(manifest), "--progress", "plain", timeout=360, env=env)
    assert result.returncode == 2, result.stderr
    assert "Traceback (most recent call last)" not in result.stderr.split("last 30 lines")[0]
    assert result.stderr.count("spacerun: ") >= 1
    for phrase in expected:
        assert phrase in result.stderr, result.stderr
