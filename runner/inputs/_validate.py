"""Check every submission of a manifest against the app's API, and report all at once.

    report = validate_submissions(manifest, client.schema)
    print(report.format())
    sys.exit(report.exit_status)          # 0 when valid, 1 when not

Validation streams over the rows (a million rows never sit in memory): problems are
grouped by kind, field and summary, each group keeps its first few examples and a count.
It does not hash files (keys are not needed to validate), only `stat`s them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from jobs.errors import EndpointNotFound

from ..manifest import Manifest, SourceKind
from ._expand import Expander, FileHasher
from ._problems import Problem, ProblemKind
from ._report import EXAMPLES_PER_GROUP, ValidationReport

if TYPE_CHECKING:
    from jobs import AppSchema

__all__ = ["validate_submissions"]


def validate_submissions(
    manifest: Manifest,
    schema: AppSchema,
    *,
    examples: int = EXAMPLES_PER_GROUP,
    hasher: FileHasher | None = None,
) -> ValidationReport:
    """Check every row of `manifest` against `schema`; never raises for a bad row.

    Raises `ManifestError` only when an input file cannot be read at all (bad encoding,
    not Parquet). A missing endpoint is reported as a problem, listing the ones that exist.
    """
    report = ValidationReport(
        manifest=manifest.display_path, endpoint=manifest.app.endpoint, examples_per_group=examples
    )
    report.keep_secrets_of(manifest)
    try:
        # Media cells are checked, not written: a run writes each when its row is sent.
        expander = Expander(manifest, schema, hasher=hasher, keys=False, write_media=False)
    except EndpointNotFound as exc:
        report.add(_endpoint_problem(manifest, exc))
        return report
    report.endpoint = expander.api_name
    for problem in expander.static_problems:
        report.add(problem)
    for _, submissions, problems in expander.expand():
        report.rows += 1
        report.submissions += len(submissions)
        for problem in problems:
            report.add(problem)
    if report.rows == 0:
        report.add(_no_rows(manifest))
    return report


def _endpoint_problem(manifest: Manifest, exc: EndpointNotFound) -> Problem:
    mark = manifest.mark("app", "endpoint")
    where = mark.file if mark.line is None else f"{mark.file}:{mark.line}"
    message = str(exc)
    if manifest.app.endpoint is None:
        valid = ", ".join(repr(v) for v in getattr(exc, "valid", None) or ()) or "none"
        message = (
            f"the app has several endpoints; say which one with app.endpoint "
            f"(or --endpoint): {valid}"
        )
    return Problem(
        kind=ProblemKind.MISSING_ENDPOINT,
        where=f"{where} (app.endpoint)",
        field="endpoint",
        summary=message,
    )


def _no_rows(manifest: Manifest) -> Problem:
    source = manifest.inputs.source
    key = source.value if source is not SourceKind.NONE else "inputs"
    mark = manifest.mark("inputs", key)
    where = mark.file if mark.line is None else f"{mark.file}:{mark.line}"
    return Problem(
        kind=ProblemKind.NO_ROWS,
        where=f"{where} (inputs.{key})",
        field=None,
        summary="the inputs give no rows, so there is nothing to run",
    )
