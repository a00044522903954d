"""The exceptions of the `runner` package, rooted at one class.

```
RunnerError                   anything spacerun reports to the user without a traceback
├── ManifestError             the manifest or an input file is malformed (file, line, column, key)
│   └── UnsetVariable         a ${VAR} in the manifest names an unset environment variable
├── ValidationFailed          submissions do not fit the app's API (carries the full report)
├── ApiChanged                a resumed run's app serves an API its records do not fit (exit 1)
├── LocalAppError             a local copy of an app did not start, or a Space run locally
│                             could not be downloaded or installed (runner.launch)
├── AllReplicasDown           no replica answered before the deadline (runner.scheduling; exit 1)
├── RunHalted                 the run stopped by itself, resumably: a pause longer than
│                             run.max_wait, or the budget (runner.scheduling; exit 130)
├── RayError                  Ray is missing, unreachable, or its cluster cannot hold the
│                             replicas asked for (runner.ray)
└── ResultsError              the run folder cannot be written as asked (runner.store)
    ├── DuplicateResultError  a second record for a key already ok (a bug if it happens)
    ├── RunFolderLockedError  another spacerun is writing this run folder
    └── RunFolderError        the file system refused the run folder (no permission, a
                              file in the way, a read-only or full disk)

JobsError                     the client's root (jobs.errors), not a RunnerError
└── AttemptTimeout            one attempt ran over run.timeout (runner.scheduling): a failed
                              attempt, handled as the client's own errors are (retried, or
                              recorded as `timeout`)
```

`AttemptTimeout` is the one exception the runner defines outside `RunnerError`: it is a
`JobsError`, so that what catches a failed attempt's errors catches it too.

The CLI catches `RunnerError`, prints `str(err)` and exits with `err.exit_status`
(an `ExitStatus`): 2 for a malformed manifest or command line (fix the input), 1 when
the manifest is well formed but its submissions do not fit the app. Messages name the place and say
what is expected; they never contain secrets (values read from `${VAR}` are not
echoed back).
"""

from __future__ import annotations

import sys
from enum import IntEnum
from typing import Protocol

from jobs import JobsError

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


__all__ = [
    "ApiChanged",
    "ExitStatus",
    "ManifestError",
    "RunnerError",
    "UnsetVariable",
    "ValidationFailed",
    "anticipated",
]


class ExitStatus(IntEnum):
    """What `spacerun` exits with, and what `RunSummary.exit_status` holds."""

    OK = 0
    """Everything is valid, or the run finished with every submission ok."""
    FAILED = 1
    """Some submissions failed, or the manifest's rows do not fit the app's API."""
    USAGE = 2
    """The manifest, an input file, the run folder or the command line is unusable."""
    INTERRUPTED = 130
    """The run was stopped (Ctrl-C, SIGTERM, `RunHandle.stop()`); run it again to resume."""


class RunnerError(Exception):
    """Root of every error raised by `runner`."""

    exit_status: ExitStatus = ExitStatus.USAGE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ManifestError(RunnerError):
    """A manifest (YAML or CSV) or one of its input files is malformed.

    `str(err)` reads like a compiler message, so editors can jump to it:
    `transcribe.yaml:12:3: run.rate: expected a rate like 10/s, 600/min or 1/h, got '10'`.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.column = column
        self.key = key
        self.detail = message
        super().__init__(_locate(message, file=file, line=line, column=column, key=key))


class UnsetVariable(ManifestError):
    """A `${VAR}` names an environment variable that is not set (and has no `:-default`)."""

    def __init__(
        self,
        variable: str,
        *,
        file: str | None = None,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.variable = variable
        super().__init__(
            f"the environment variable {variable} is not set; set it, or give a default "
            f"with ${{{variable}:-default}}",
            file=file,
            line=line,
            column=column,
            key=key,
        )


class _Report(Protocol):
    """What `ValidationFailed` needs of its report: a `runner.inputs.ValidationReport`
    (named here only as this shape, so this module imports no layer, not even for
    types)."""

    def format(self) -> str: ...


class ValidationFailed(RunnerError):
    """Submissions do not fit the app's API; `report` holds every problem, grouped (a
    `runner.inputs.ValidationReport`)."""

    exit_status = ExitStatus.FAILED

    def __init__(self, report: _Report) -> None:
        self.report = report
        super().__init__(report.format())


class ApiChanged(RunnerError):
    """The run folder's records were computed by an API the app no longer serves, and
    its rows do not fit the new one by name: resuming would mix two apps' results."""

    exit_status = ExitStatus.FAILED


def _locate(
    message: str, *, file: str | None, line: int | None, column: int | None, key: str | None
) -> str:
    place = file or ""
    if file and line is not None:
        place += f":{line}"
        if column is not None:
            place += f":{column}"
    parts = [p for p in (place, key, message) if p]
    return ": ".join(parts)


def anticipated(exc: BaseException) -> RunnerError | JobsError | None:
    """The error a user should see for `exc`, or None for a bug (which keeps its traceback).

    Task groups wrap what their tasks raise in exception groups; the error inside is
    what happened (a replica that did not start, a bad manifest), so it is unwrapped:
    the first spacerun or jobs error found, when everything else in the group is one
    too (or a cancellation that it caused).
    """
    if isinstance(exc, RunnerError | JobsError):
        return exc
    if not isinstance(exc, BaseExceptionGroup):
        return None
    found = [anticipated(inner) for inner in exc.exceptions if not _is_cancellation(inner)]
    if not found or any(inner is None for inner in found):
        return None
    return found[0]


def _is_cancellation(exc: BaseException) -> bool:
    # The runner runs on anyio's asyncio backend, whose cancellation is asyncio's. If
    # asyncio was never imported nothing was cancelled; importing it here (as at the top)
    # would cost every command line a twentieth of a second.
    asyncio = sys.modules.get("asyncio")
    return asyncio is not None and isinstance(exc, asyncio.CancelledError)
