"""The package's shape: one-way layering, public surfaces, the console script."""

from __future__ import annotations

import ast
import importlib
import io
import pkgutil
import re
import subprocess
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.apps import RunningApp

import jobs
from runner.errors import RunnerError
from runner.store import RecordStatus, ResultRecord, ResultsStore

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
# `store` (the run folder: its map, records, files; no network) sits below `inputs`, whose
# dataset source keeps its pinned revision and media files in the run folder.
# `push` (results to a Hub dataset) reads the run folder and talks to the Hub only.
# `ray` (Ray's connection and Ray Data's GradioCall) builds on scheduling's engine and
# retry rules, and nothing above; `launch` builds its `ray:` replicas on it.
RUNNER_LAYERS = (
    "errors",
    "manifest",
    "store",
    "inputs",
    "push",
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
# The run folder's manifest.yaml, which `spacerun status` does not read.
LAZY_IMPORTS |= {"yaml"}
# `datasets` (the `spacerun[datasets]` extra) and the dataset reader that needs it.
LAZY_IMPORTS |= {"datasets", "_dataset", "push_results", "push"}
# The command line imports each layer (and the client) in the command that uses it.
CLI_LAZY_IMPORTS = {"anyio", "jobs", "manifest", "run", "store", "push", "huggingface_hub"}


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
                lazy = LAZY_IMPORTS | (CLI_LAZY_IMPORTS if path.name == "cli.py" else set())
                if not names & lazy:
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


# Libraries a command line, or a first `import jobs`, must not pay for: each is loaded by
# the code that uses it (the HTTP stack when a client is made, aiohttp when it opens,
# huggingface_hub when the Hub is called, numpy and yaml when a run folder or a manifest
# is read, pandas and pyarrow for a table, jinja2 and plotly for the report, Ray for
# `ray:` replicas).
HEAVY = {
    "aiohttp",
    "anyio",
    "asyncio",
    "httpx",
    "huggingface_hub",
    "jinja2",
    "numpy",
    "pandas",
    "plotly",
    "pyarrow",
    "ray",
    "yaml",
}
HTTP = {"anyio", "asyncio", "httpx"}
RUN_FOLDER = {"numpy"}


def _loaded_by(code: str) -> set[str]:
    """The top-level packages that `code` leaves imported, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint(*sys.modules, file=sys.stderr)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return {name.split(".")[0] for name in out.stderr.split()}


@pytest.mark.parametrize(
    ("code", "may_load"),
    [
        ("import jobs", set()),
        ("import runner.cli", set()),
        ("import runner.cli\ntry: runner.cli.main(['--help'])\nexcept SystemExit: pass", set()),
        ("import runner.cli\nrunner.cli.main(['status', RUN_DIR])", RUN_FOLDER),
        ("from jobs import AsyncClient, Client, hf_token_from_env, is_hf_host", HTTP),
        (
            "from runner import run, map, load_manifest, RunOptions, read_status",
            HTTP | RUN_FOLDER | {"yaml"},
        ),
    ],
    ids=["import-jobs", "import-cli", "help", "status", "client", "runner-api"],
)
def test_what_starting_up_loads(code: str, may_load: set[str], tmp_path: Path) -> None:
    """`spacerun --help` and `spacerun status` answer at once: they, `import jobs` and the
    run API load no heavy library they do not use."""
    with ResultsStore.open(tmp_path) as store:  # a run folder with one ok row
        store.append(
            ResultRecord(key="a", row=0, status=RecordStatus.OK, inputs={}, outputs={"x": 1})
        )
    loaded = _loaded_by(code.replace("RUN_DIR", repr(str(tmp_path))))
    assert "runner" in loaded or "jobs" in loaded
    assert loaded & HEAVY <= may_load


def test_every_exported_name_imports_as_before() -> None:
    """The lazy surfaces give every name of `__all__`, and `runner.run` stays the function
    after its subpackage `runner/run/` is loaded."""
    code = (
        "import runner.run\n"  # the subpackage first: it must not hide the function
        "import jobs, runner\n"
        "from jobs import *\n"
        "from runner import *\n"
        "assert all(hasattr(jobs, n) for n in jobs.__all__)\n"
        "assert all(hasattr(runner, n) for n in runner.__all__)\n"
        "assert runner.run is run and callable(run) and run.__name__ == 'run'\n"
        "assert runner.map is map and map.__module__.startswith('runner.run')\n"
        "assert set(jobs.__all__) <= set(dir(jobs)) and set(runner.__all__) <= set(dir(runner))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def test_a_client_of_a_local_app_does_not_load_the_hub_client(calculator_app: RunningApp) -> None:
    """huggingface_hub is for Spaces and Hugging Face hosts: a client of any other app
    opens (aiohttp and all) without it, and without reading the saved HF login."""
    code = (
        "import os\n"
        "os.environ.pop('HF_TOKEN', None)  # else the token is taken from it, no login read\n"
        f"from jobs import Client\nClient({calculator_app.url!r}).close()"
    )
    loaded = _loaded_by(code)
    assert "aiohttp" in loaded
    assert "huggingface_hub" not in loaded


# A dotted name of one of the packages' modules (or of a name in one), as a docstring or
# a comment writes it: `runner.store._scan`, `jobs.errors.EndpointNotFound`, `runner.map`.
_MODULE_REF = re.compile(r"(?<![\w./-])((?:jobs|runner)(?:\.[A-Za-z_]\w*)+)")


def _prose(path: Path) -> Iterator[tuple[int, str]]:
    """The comments and docstrings (any string standing alone as a statement) of a file,
    each with the line it starts on."""
    source = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(source, str(path))):
        if (
            isinstance(node, ast.Expr)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            yield node.lineno, node.value.value


def _resolves(dotted: str) -> bool:
    """Whether `dotted` names a module, or a name reached from the longest module in it."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:end]))
        except ImportError:
            continue
        for part in parts[end:]:
            if not hasattr(found, part):
                return False
            found = getattr(found, part)
        return True
    return False


def test_docs_name_modules_that_exist() -> None:
    """Every `runner.x.y` / `jobs._x` a docstring or a comment names is still there, so a
    module that is moved or renamed takes the docs that point at it along."""
    stale = []
    for package in ("jobs", "runner"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for line, text in _prose(path):
                for ref in _MODULE_REF.finditer(text):
                    if not _resolves(ref[1]):
                        at = line + text.count("\n", 0, ref.start())
                        stale.append(f"{path.relative_to(ROOT)}:{at}: {ref[1]}")
    assert stale == []


def _drawn_trees(doc: str) -> list[tuple[str, str | None]]:
    """Each class drawn in the trees of `doc`'s code blocks, with the class drawn above it
    (None for a root)."""
    drawn: list[tuple[str, str | None]] = []
    above: list[str] = []
    inside = False
    for line in doc.splitlines():
        if line.startswith("```"):
            inside = not inside
        elif not inside:
            continue
        elif root := re.match(r"([A-Z]\w*)(?:\s|$)", line):
            above = [root[1]]
            drawn.append((root[1], None))
        elif child := re.match(r"((?:[│ ]   )*)[├└]── (\w+)", line):
            depth = len(child[1]) // 4 + 1
            del above[depth:]
            drawn.append((child[2], above[depth - 1]))
            above.append(child[2])
    return drawn


def _error_classes(root: type, package: str) -> dict[str, type]:
    """Every subclass of `root` that `package` defines, by name (all its modules loaded)."""
    top = importlib.import_module(package)
    for module in pkgutil.walk_packages(top.__path__, f"{package}."):
        importlib.import_module(module.name)
    found: dict[str, type] = {}
    todo: list[type] = [root]
    while todo:
        subclasses: list[type] = todo.pop().__subclasses__()
        for sub in subclasses:
            todo.append(sub)
            if sub.__module__.split(".")[0] == package:
                found[sub.__name__] = sub
    return found


@pytest.mark.parametrize(
    ("package", "roots"),
    [("jobs", (jobs.JobsError,)), ("runner", (RunnerError, jobs.JobsError))],
)
def test_error_trees_draw_every_error_class(package: str, roots: tuple[type, ...]) -> None:
    """The trees in `jobs/errors.py`'s and `runner/errors.py`'s docstrings show every error
    class of the package, each under a class it derives from."""
    classes = {root.__name__: root for root in roots}
    for root in roots:
        classes |= _error_classes(root, package)
    drawn = _drawn_trees(importlib.import_module(f"{package}.errors").__doc__ or "")
    assert sorted(name for name, _ in drawn) == sorted(classes)
    for name, parent in drawn:
        assert parent is None or classes[parent] in classes[name].__bases__, name


def _folder_entries(text: str) -> list[str]:
    """The entry names of the first run-folder listing (`runs/<name>/`) in `text`."""
    block = text[text.index("runs/<name>/\n") :].split("```", 1)[0]
    return [line.split()[0] for line in block.splitlines()[1:] if line.strip()]


def test_the_run_folder_has_one_map() -> None:
    """`RunFolder` lists what the README's run folder lists, and no other module of
    `runner` spells the name of one of its files: each path is one of its properties."""
    mapped = _folder_entries((ROOT / "runner/store/_runfolder.py").read_text())
    assert mapped == _folder_entries((ROOT / "README.md").read_text())
    names = {"validation.json", "keys.txt", "index.bin"} | {
        entry.split("/")[0] for entry in mapped if "." in entry.split("/")[0]
    }
    spelled = []
    for path in (ROOT / "runner").rglob("*.py"):
        if path.name == "_runfolder.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        spelled += [
            f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and id(node) not in docstrings
            and isinstance(node.value, str)
            and any(name in node.value for name in names | {"logs", "cache"})
            and node.value.strip("/") in names | {"logs", "cache", "files"}
        ]
    assert not spelled, spelled


def test_the_protocol_package_does_no_io() -> None:
    """`jobs._protocol` decodes what servers say without touching a network: importing
    every one of its modules loads no HTTP or event-loop library."""
    package = importlib.import_module("jobs._protocol")
    modules = [m.name for m in pkgutil.iter_modules(package.__path__, "jobs._protocol.")]
    assert {"jobs._protocol.messages", "jobs._protocol.sse", "jobs._protocol.schema"} <= set(
        modules
    )
    loaded = _loaded_by("\n".join(f"import {name}" for name in modules))
    assert "jobs" in loaded
    assert not {"httpx", "anyio", "aiohttp", "asyncio", "sniffio"} & loaded


def test_runner_modules_and_functions_stay_small() -> None:
    """No module of `runner` over ~400 lines, no function body (its docstring aside)
    over 50: one concept each, readable at a sitting."""
    long_modules, long_functions = [], []
    for path in sorted((ROOT / "runner").rglob("*.py")):
        name = path.relative_to(ROOT).as_posix()
        text = path.read_text()
        if text.count("\n") > 410:
            long_modules.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text, name)):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            if body and (size := body[-1].end_lineno - body[0].lineno + 1) > 50:  # type: ignore[operator]
                long_functions.append(f"{name}:{node.lineno} {node.name}: {size} lines")
    assert not long_modules, long_modules
    assert not long_functions, long_functions
