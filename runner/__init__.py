"""runner — many jobs against many replicas of a Gradio app: manifests, scheduling,
results on disk and resume. Built on `jobs`; `jobs` never imports `runner`.

```python
import runner

summary = runner.run("sample_manifests/transcribe.yaml")   # what `spacerun run` does
print(summary["this_run"], summary["exit_status"])
```
"""

from .durations import Rate, format_duration, parse_duration, parse_rate
from .errors import (
    ManifestError,
    RunnerError,
    UnsetVariable,
    ValidationFailed,
)
from .expand import FileHasher, Submission, iter_submissions, submission_key
from .local import LocalApp, LocalAppError, LocalApps, LocalAppSpec
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
from .replicas import AllReplicasDown, Replica, ReplicaPool
from .results import (
    DuplicateResultError,
    RecordStatus,
    ResultRecord,
    ResultsError,
    ResultsStore,
    RunFolderLockedError,
)
from .retry import RetryPolicy
from .run import RunHandle, RunOptions, run, run_async, validate_manifest
from .runfolder import RunFolder
from .scheduler import Outcome, OutcomeStatus, Scheduler
from .status import RunStatus, read_status
from .throttle import AdaptiveLimit, RateLimiter
from .validate import ValidationReport, validate_submissions


def __getattr__(name: str) -> object:
    # The table functions need pandas (~0.4 s and 85 MB to import): loaded on first use.
    if name in ("export", "load_table"):
        from . import export as _export

        return getattr(_export, name)
    raise AttributeError(f"module 'runner' has no attribute {name!r}")


__all__ = [
    "AdaptiveLimit",
    "AllReplicasDown",
    "AppSpec",
    "DuplicateReplica",
    "DuplicateResultError",
    "FileHasher",
    "InputsSpec",
    "LocalApp",
    "LocalAppError",
    "LocalAppSpec",
    "LocalApps",
    "LocalReplica",
    "Manifest",
    "ManifestError",
    "Outcome",
    "OutcomeStatus",
    "OutputSpec",
    "Rate",
    "RateLimiter",
    "RecordStatus",
    "Replica",
    "ReplicaPool",
    "ResultRecord",
    "ResultsError",
    "ResultsStore",
    "RetryPolicy",
    "RunFolder",
    "RunFolderLockedError",
    "RunHandle",
    "RunOptions",
    "RunSpec",
    "RunStatus",
    "RunnerError",
    "Scheduler",
    "Secret",
    "SpaceReplica",
    "Submission",
    "UnsetVariable",
    "UrlReplica",
    "ValidationFailed",
    "ValidationReport",
    "export",
    "format_duration",
    "iter_submissions",
    "load_manifest",
    "load_table",
    "parse_duration",
    "parse_rate",
    "read_status",
    "run",
    "run_async",
    "submission_key",
    "validate_manifest",
    "validate_submissions",
]
