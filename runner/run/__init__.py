"""One run end to end: options and handle, the resume plan, progress, the summary."""

from ._api import run, run_async, validate_manifest
from ._options import RunHandle, RunOptions
from ._progress import Progress, ProgressMode
from ._resume import ValidationStamp, walk, write_stamp
from ._summary import RunSummary

__all__ = [
    "Progress",
    "ProgressMode",
    "RunHandle",
    "RunOptions",
    "RunSummary",
    "ValidationStamp",
    "run",
    "run_async",
    "validate_manifest",
    "walk",
    "write_stamp",
]
