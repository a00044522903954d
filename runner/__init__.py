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
`launch` (manifest replicas -> live replicas), `run` (one run end to end).
What users need of them is re-exported here.
"""

from typing import TYPE_CHECKING

from .errors import (
    ExitStatus,
    ManifestError,
    RunnerError,
    UnsetVariable,
    ValidationFailed,
)
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
    read_status,
)

if TYPE_CHECKING:
    from .store import build_report, export, load_table


def __getattr__(name: str) -> object:
    # The table functions need pandas (~0.4 s and 85 MB to import): loaded on first use.
    if name in ("export", "load_table"):
        from .store import _export

        return getattr(_export, name)
    if name == "build_report":
        from .store import _report

        return _report.build_report
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


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
