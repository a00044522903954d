"""The package's shape: one-way layering, public surfaces, the console script."""

from __future__ import annotations

import ast
import importlib
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


# Lowest first: a layer may import the layers before it, never one after it.
# `ray` (Ray's connection and Ray Data's GradioCall) builds on scheduling's engine and
# retry rules, and nothing above; `launch` builds its `ray:` replicas on it.
RUNNER_LAYERS = (
    "errors",
    "manifest",
    "inputs",
    "store",
    "scheduling",
    "ray",
    "launch",
    "run",
    "cli",
)
# Imports allowed inside a function: heavy or optional libraries loaded on first use.
LAZY_IMPORTS = {"pandas", "numpy", "pyarrow", "huggingface_hub", "ray", "export", "_export"}
# The report (jinja2, numpy, plotly's bundle), pandas' table and tqdm's notebook bar.
LAZY_IMPORTS |= {"build_report", "_report", "plotly", "load_table", "tqdm"}
# The live report's page (the same jinja2 and plotly).
LAZY_IMPORTS |= {"LivePage", "_report_live"}


def _runtime_imports(tree: ast.Module) -> list[ast.ImportFrom | ast.Import]:
    """Imports that run, leaving out `if TYPE_CHECKING:` blocks (types only)."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for n in ast.walk(node))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in skipped
    ]


def _layer(path: Path) -> str:
    parts = path.relative_to(ROOT / "runner").with_suffix("").parts
    return parts[0]


def test_runner_layers_import_downwards_only() -> None:
    """manifest -> inputs -> store -> scheduling -> launch -> run -> cli: no import goes up
    the list, and no subpackage reaches into another's private modules."""
    rank = {name: i for i, name in enumerate(RUNNER_LAYERS)}
    wrong = []
    for path in (ROOT / "runner").rglob("*.py"):
        here = _layer(path)
        if here == "__init__":
            continue  # the package surface re-exports every layer
        tree = ast.parse(path.read_text(), str(path))
        for node in _runtime_imports(tree):
            if not isinstance(node, ast.ImportFrom) or node.level == 0:
                continue
            depth = len(path.relative_to(ROOT / "runner").parts) - 1
            if node.level <= depth and depth > 0:
                continue  # within its own subpackage
            target = (node.module or "").split(".")
            layer = target[0]
            if layer not in rank:
                continue
            if rank[layer] > rank[here]:
                wrong.append(f"{path.relative_to(ROOT)}: {here} imports {layer}")
            if len(target) > 1 and target[1].startswith("_"):
                wrong.append(f"{path.relative_to(ROOT)}: reaches into {'.'.join(target)}")
    assert wrong == []


def test_runner_imports_inside_functions_are_deliberately_lazy() -> None:
    """An import inside a function is only for a heavy or optional library."""
    found = []
    for path in (ROOT / "runner").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(func):
                if isinstance(node, ast.Import):
                    names = {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom):
                    # `from ray.util.placement_group import ...` is an import of ray.
                    parts = (node.module or "").split(".")
                    names = {parts[0] if node.level == 0 else parts[-1], parts[-1]}
                    names |= {a.name for a in node.names}
                else:
                    continue
                if not names & LAZY_IMPORTS:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_runner_package_holds_only_layers() -> None:
    """The top of `runner/` is its subpackages plus `__init__`, `cli` and `errors`."""
    top = {p.name for p in (ROOT / "runner").iterdir() if not p.name.startswith((".", "__pycache"))}
    assert top == {"__init__.py", "cli.py", "errors.py", "py.typed", *RUNNER_LAYERS[1:-1]}
    for layer in RUNNER_LAYERS[1:-1]:
        package = importlib.import_module(f"runner.{layer}")
        assert package.__doc__, layer
        assert all(hasattr(package, name) for name in package.__all__), layer


# AsyncClient members the blocking Client deliberately does not have, and why.
ASYNC_ONLY = {
    "aclose": "Client.close() does it",
    "connect": "Client(src) connects in its constructor, as gradio_client's does",
    "new_session": "a view sharing the async client's pool; the runner's per-row sessions",
    "submit_values": "already-bound values, for the runner; Client.submit binds arguments",
}


def test_blocking_client_offers_every_public_method_of_the_async_one() -> None:
    """What `AsyncClient` can do, `Client` can do too, but for the listed exceptions."""
    async_members = {n for n in dir(jobs.AsyncClient) if not n.startswith("_")}
    sync_members = {n for n in dir(jobs.Client) if not n.startswith("_")}
    assert async_members - sync_members == set(ASYNC_ONLY)
    assert ASYNC_ONLY.keys() <= async_members  # no stale entry
