"""runner — many jobs against many replicas of a Gradio app: manifests, scheduling,
results on disk and resume. Built on `jobs`; `jobs` never imports `runner`.

```python
import runner

summary = runner.run("sample_manifests/transcribe.yaml")   # what `spacerun run` does
print(summary.this_run, summary.exit_status)

out = runner.map(df, app="owner/space", endpoint="/predict", map={"text": "{sentence}"})
```

The layers, each a subpackage whose `__init__` is its surface (imports flow down
this list, never up): `manifest` (text -> `Manifest`), `inputs` (rows ->
submissions), `store` (the run folder), `scheduling` (submissions -> outcomes),
`ray` (a Ray cluster; a Gradio app as a Ray Data map), `launch` (manifest replicas ->
live replicas), `run` (one run end to end).
What users need of them is re-exported here.
"""

import importlib
import sys
import types
from typing import TYPE_CHECKING

from .errors import (
    ExitStatus,
    ManifestError,
    RunnerError,
    UnsetVariable,
    ValidationFailed,
)

if TYPE_CHECKING:
    from .inputs import (
        Submission,
        ValidationReport,
        iter_submissions,
        submission_key,
        validate_submissions,
    )
    from .launch import LocalAppError
    from .manifest import (
        AppSpec,
        DuplicateReplica,
        InputsSpec,
        LocalReplica,
        Manifest,
        OutputSpec,
        RunSpec,
        Secret,
        SpaceReplica,
        UrlReplica,
        load_manifest,
    )
    from .run import (
        MapResult,
        RunHandle,
        RunOptions,
        RunSummary,
        map,
        map_async,
        map_iter,
        run,
        run_async,
        validate_manifest,
    )
    from .scheduling import AllReplicasDown
    from .store import (
        DuplicateResultError,
        RecordStatus,
        ResultRecord,
        ResultsError,
        RunFolderLockedError,
        RunStatus,
        build_report,
        export,
        load_table,
        read_status,
    )

# Each name is imported from its layer on first use (PEP 562), so `import runner` (and
# `spacerun --help`, which imports `runner.cli` inside it) loads no layer it does not
# use; mypy and readers see the imports above. The table functions and the report also
# load pandas, jinja2 and plotly only when called (see `runner.store`).
_LAZY = {
    "inputs": (
        "Submission",
        "ValidationReport",
        "iter_submissions",
        "submission_key",
        "validate_submissions",
    ),
    "launch": ("LocalAppError",),
    "manifest": (
        "AppSpec",
        "DuplicateReplica",
        "InputsSpec",
        "LocalReplica",
        "Manifest",
        "OutputSpec",
        "RunSpec",
        "Secret",
        "SpaceReplica",
        "UrlReplica",
        "load_manifest",
    ),
    "run": (
        "MapResult",
        "RunHandle",
        "RunOptions",
        "RunSummary",
        "map",
        "map_async",
        "map_iter",
        "run",
        "run_async",
        "validate_manifest",
    ),
    "scheduling": ("AllReplicasDown",),
    "store": (
        "DuplicateResultError",
        "RecordStatus",
        "ResultRecord",
        "ResultsError",
        "RunFolderLockedError",
        "RunStatus",
        "build_report",
        "export",
        "load_table",
        "read_status",
    ),
}
_LAYER_OF = {name: layer for layer, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    layer = _LAYER_OF.get(name)
    if layer is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{layer}"), name)
    globals()[name] = value  # found directly from now on
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAYER_OF})


class _Package(types.ModuleType):
    """`runner.run` is the function although `runner/run/` is a subpackage too.

    Loading a subpackage sets it as an attribute of its parent, which would hide the
    function of the same name once `runner.run` (the package) is imported; that one
    assignment is dropped. Imports still find the subpackage in `sys.modules`."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in _LAYER_OF and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "AllReplicasDown",
    "AppSpec",
    "DuplicateReplica",
    "DuplicateResultError",
    "ExitStatus",
    "InputsSpec",
    "LocalAppError",
    "LocalReplica",
    "Manifest",
    "ManifestError",
    "MapResult",
    "OutputSpec",
    "RecordStatus",
    "ResultRecord",
    "ResultsError",
    "RunFolderLockedError",
    "RunHandle",
    "RunOptions",
    "RunSpec",
    "RunStatus",
    "RunSummary",
    "RunnerError",
    "Secret",
    "SpaceReplica",
    "Submission",
    "UnsetVariable",
    "UrlReplica",
    "ValidationFailed",
    "ValidationReport",
    "build_report",
    "export",
    "iter_submissions",
    "load_manifest",
    "load_table",
    "map",
    "map_async",
    "map_iter",
    "read_status",
    "run",
    "run_async",
    "submission_key",
    "validate_manifest",
    "validate_submissions",
]
