"""The package's shape: one-way layering, public surfaces, the console script."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import jobs

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> set[str]:
    found: set[str] = set()
    for path in (ROOT / package).rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found


def test_jobs_never_imports_runner() -> None:
    """`runner` builds on `jobs`; `jobs` does not know `runner` exists."""
    assert "runner" not in _imports("jobs")
    assert "jobs" in _imports("runner")


def test_gradio_is_not_needed_at_runtime() -> None:
    """Neither package imports gradio or gradio_client: they are test tools only."""
    for package in ("jobs", "runner"):
        assert not {"gradio", "gradio_client"} & _imports(package), package


def test_jobs_public_surface() -> None:
    """The names a gradio_client user reaches for are exported, and only public ones."""
    for name in (
        "AsyncClient",
        "Client",
        "Job",
        "Status",
        "StatusUpdate",
        "handle_file",
        "file",
        "JobsError",
        "AppError",
        "QueueFull",
        "AuthError",
    ):
        assert name in jobs.__all__, name
        assert hasattr(jobs, name)
    assert all(not name.startswith("_") or name == "__version__" for name in jobs.__all__)
    assert jobs.file is jobs.handle_file


def test_error_tree_has_one_root() -> None:
    """Every exported error class derives from JobsError."""
    errors = [
        getattr(jobs, n)
        for n in jobs.__all__
        if n.endswith(
            (
                "Error",
                "Full",
                "Lost",
                "Cancelled",
                "Timeout",
                "Limited",
                "Running",
                "Version",
                "Failed",
                "Found",
                "Rejected",
            )
        )
    ]
    assert errors and all(issubclass(e, jobs.JobsError) for e in errors)


def test_console_script_prints_version_and_help() -> None:
    """`spacerun --version` and `spacerun --help` work."""
    out = subprocess.run(
        [sys.executable, "-m", "runner.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == f"spacerun {jobs.__version__}"
    out = subprocess.run(
        [sys.executable, "-m", "runner.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert "Gradio apps" in out.stdout
