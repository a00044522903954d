"""One run end to end: options and handle, the resume plan, progress, the summary; and
`map`, the same from Python with rows in and a DataFrame out; `WatchServer`, the report
of a run folder served as the run goes."""

from ._api import run, run_async, validate_manifest
from ._map_api import map, map_async, map_iter
from ._map_request import MapResult
from ._options import RunHandle, RunOptions
from ._progress import Progress, ProgressMode
from ._redact import RedactingFilter
from ._resume import ValidationStamp, walk, write_stamp
from ._summary import RunSummary
from ._watch import WatchServer

__all__ = [
    "MapResult",
    "Progress",
    "ProgressMode",
    "RedactingFilter",
    "RunHandle",
    "RunOptions",
    "RunSummary",
    "ValidationStamp",
    "WatchServer",
    "map",
    "map_async",
    "map_iter",
    "run",
    "run_async",
    "validate_manifest",
    "walk",
    "write_stamp",
]
