"""Check every submission of a manifest against the app's API, and report all at once.

    report = validate_submissions(manifest, client.schema)
    print(report.format())
    sys.exit(report.exit_status)          # 0 when valid, 1 when not

Validation streams over the rows (a million rows never sit in memory): problems are
grouped by kind, field and summary, each group keeps its first few examples and a count.
It does not hash files (keys are not needed to validate), only `stat`s them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from jobs.errors import EndpointNotFound

from ._problems import Problem, ProblemKind
from .errors import EXIT_INVALID, EXIT_OK, ValidationFailed
from .expand import Expander, FileHasher
from .manifest import Manifest, SourceKind

if TYPE_CHECKING:
    from jobs import AppSchema

__all__ = ["Problem", "ProblemGroup", "ProblemKind", "ValidationReport", "validate_submissions"]

EXAMPLES_PER_GROUP = 3
MAX_GROUPS = 50
_ORDER = {kind: i for i, kind in enumerate(ProblemKind)}


@dataclass(slots=True, kw_only=True)
class ProblemGroup:
    """All problems of one kind with the same field and summary."""

    kind: ProblemKind
    field: str | None
    summary: str
    count: int = 0
    examples: list[Problem] = dataclasses.field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ValidationReport:
    """What validation found: counts, and problems grouped with a few examples each."""

    manifest: str
    endpoint: str | None
    rows: int = 0
    submissions: int = 0
    groups: list[ProblemGroup] = dataclasses.field(default_factory=list)
    #: Problems past MAX_GROUPS groups, counted but not shown.
    ungrouped: int = 0
    examples_per_group: int = EXAMPLES_PER_GROUP
    _index: dict[tuple[ProblemKind, str | None, str], ProblemGroup] = dataclasses.field(
        default_factory=dict, repr=False
    )

    @classmethod
    def of(
        cls, manifest: Manifest, problems: Iterable[Problem], *, endpoint: str | None = None
    ) -> ValidationReport:
        report = cls(manifest=manifest.display_path, endpoint=endpoint or manifest.app.endpoint)
        for problem in problems:
            report.add(problem)
        return report

    def add(self, problem: Problem) -> None:
        key = (problem.kind, problem.field, problem.summary)
        group = self._index.get(key)
        if group is None:
            if len(self.groups) >= MAX_GROUPS:
                self.ungrouped += 1
                return
            group = ProblemGroup(kind=problem.kind, field=problem.field, summary=problem.summary)
            self._index[key] = group
            self.groups.append(group)
        group.count += 1
        if len(group.examples) < self.examples_per_group:
            group.examples.append(problem)

    @property
    def problem_count(self) -> int:
        return sum(g.count for g in self.groups) + self.ungrouped

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def exit_status(self) -> int:
        return EXIT_OK if self.ok else EXIT_INVALID

    def counts(self) -> dict[ProblemKind, int]:
        """Problems per kind."""
        out: dict[ProblemKind, int] = {}
        for group in self.groups:
            out[group.kind] = out.get(group.kind, 0) + group.count
        return out

    def raise_for_problems(self) -> None:
        """Raise `ValidationFailed` carrying this report unless it is ok."""
        if not self.ok:
            raise ValidationFailed(self)

    def format(self) -> str:
        """The report for a terminal: a headline, then each group with its examples."""
        target = self.endpoint or "the app"
        if self.ok:
            return (
                f"{self.manifest}: {_n(self.submissions, 'submission')} from "
                f"{_n(self.rows, 'row')} fit {target}."
            )
        lines = [
            f"{self.manifest}: {_n(self.problem_count, 'problem')} in {_n(self.rows, 'row')} "
            f"for {target}; nothing was submitted."
        ]
        for group in sorted(self.groups, key=lambda g: _ORDER[g.kind]):
            lines.append("")
            rows = any(e.row is not None for e in group.examples)
            count = f" [{_n(group.count, 'row')}]" if rows else ""
            lines.append(f"{group.kind.value}: {group.summary}{count}")
            for example in group.examples:
                lines.append(
                    f"  {example.where}" + (f": {example.detail}" if example.detail else "")
                )
            rest = group.count - len(group.examples)
            if rest > 0:
                lines.append(f"  ... and {rest:,} more" + (" rows" if rows else ""))
        if self.ungrouped:
            lines.append("")
            lines.append(f"... and {self.ungrouped:,} more problems of other kinds")
        return "\n".join(lines)


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
    try:
        expander = Expander(manifest, schema, hasher=hasher, keys=False)
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


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
