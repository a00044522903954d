"""The run folder: records, the append-only results log and its index, status, export,
the report.

No network and no app: everything here reads or writes files only.
"""

from typing import TYPE_CHECKING

from ._errors import RunFolderError
from ._index import CODES as STATUS_CODES
from ._index import MISSING as NO_STATUS
from ._keycache import CACHE_FORMAT, KeyCache, KeyMask, files_digest, mask_of
from ._record import RecordStatus, ResultRecord, utc_now
from ._results import (
    DuplicateResultError,
    Durability,
    ResultsError,
    ResultsStore,
    RunFolderLockedError,
)
from ._runfolder import (
    RunDir,
    RunFolder,
    read_manifest,
    read_summary,
    write_bytes_atomic,
    write_manifest,
    write_summary,
)
from ._scan import scan_results
from ._schema_cache import schema_digest, schema_from_dict, schema_to_dict
from ._status import Failure, RunStatus, read_status

if TYPE_CHECKING:
    from ._export import ExportFormat, export, load_table
    from ._report import build_report
    from ._report_live import LivePage


def __getattr__(name: str) -> object:
    # The table functions need pandas (~0.4 s and 85 MB to import): loaded on first use.
    if name in ("export", "load_table", "ExportFormat"):
        from . import _export

        return getattr(_export, name)
    if name == "build_report":  # jinja2 and plotly: loaded when a report is written
        from . import _report

        return _report.build_report
    if name == "LivePage":
        from . import _report_live

        return _report_live.LivePage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CACHE_FORMAT",
    "NO_STATUS",
    "STATUS_CODES",
    "DuplicateResultError",
    "Durability",
    "ExportFormat",
    "Failure",
    "KeyCache",
    "KeyMask",
    "LivePage",
    "RecordStatus",
    "ResultRecord",
    "ResultsError",
    "ResultsStore",
    "RunDir",
    "RunFolder",
    "RunFolderError",
    "RunFolderLockedError",
    "RunStatus",
    "build_report",
    "export",
    "files_digest",
    "load_table",
    "mask_of",
    "read_manifest",
    "read_status",
    "read_summary",
    "scan_results",
    "schema_digest",
    "schema_from_dict",
    "schema_to_dict",
    "utc_now",
    "write_bytes_atomic",
    "write_manifest",
    "write_summary",
]
