"""Input rows -> submissions: map, matrix, types, defaults and a deterministic key.

    for submission in iter_submissions(manifest, client.schema):
        ...  # submission.key, .row, .line, .inputs, .files

Expansion is a chain of generators (read a row, spread it over the matrix, apply the
map, coerce each value to its parameter, fill defaults, hash), so memory does not grow
with the number of rows. `iter_submissions` raises `ValidationFailed` at the first row
that does not fit the endpoint; `validate_submissions` (`runner.inputs._validate`) walks
the same chain and collects every problem instead.

The key is the first 20 hex digits of a SHA-256 over canonical JSON of the endpoint's
api_name and every parameter's value (defaults filled). A local file contributes the
SHA-256 of its content, not its path; a URL contributes the URL. So the same inputs give
the same key in any row order and across runs, identical rows share one key, and any
change to a value, a file's bytes or the endpoint gives a new key.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationFailed
from ..manifest import Manifest, dotted
from ._coerce import Coercer, coercer_for, is_url
from ._keys import KEY_LENGTH, FileHasher, default_hasher, key_of, submission_key
from ._media import MediaFile
from ._problems import Invalid, Problem, ProblemKind
from ._report import ValidationReport
from ._sources import SourceRow, iter_rows
from ._templates import compile_template, render_template, template_reads

if TYPE_CHECKING:
    from jobs import AppSchema, Endpoint

__all__ = [
    "KEY_LENGTH",
    "FileHasher",
    "Submission",
    "batched",
    "iter_submissions",
    "submission_key",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Submission:
    """One job to run: every parameter's value, ready to bind, and its key."""

    key: str
    #: 0-based index of the input row (several submissions share it under a matrix).
    row: int
    #: Where the row was read, for messages: `data.csv:12 (row 10)`.
    where: str
    #: The row's line in its file (CSV, JSONL, inline YAML rows), else None.
    line: int | None
    #: Parameter name -> value, in the endpoint's order, defaults filled. A file
    #: parameter holds an absolute local path or a URL (a list of them for "list").
    inputs: Mapping[str, Any]
    #: The local files among the inputs, absolute.
    files: tuple[str, ...] = ()


def iter_submissions(
    manifest: Manifest, schema: AppSchema, *, hasher: FileHasher | None = None
) -> Iterator[Submission]:
    """Every submission of `manifest`, lazily; `ValidationFailed` at the first bad row.

    Also raises `jobs.errors.EndpointNotFound` when the endpoint is not in `schema`, and
    `ManifestError` when an input file cannot be read.
    """

    expander = Expander(manifest, schema, hasher=hasher)
    expander.raise_for(expander.static_problems, rows=0)
    for row in iter_rows(manifest):
        yield from expander.submissions_of(row)


def batched(submissions: Iterable[Submission], size: int) -> Iterator[list[Submission]]:
    """Lists of up to `size` submissions: read a batch in a worker thread, not one by one."""
    iterator = iter(submissions)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class Expander:
    """The compiled plan for one manifest against one endpoint.

    `static_problems` are found once, from the manifest alone (a `map` key that is not a
    parameter, a required parameter nothing provides, a bad matrix value); `expand()`
    then yields `(row, submissions, problems)` per input row. With `write_media` False
    (validation), a dataset's media cells stay unwritten `MediaFile`s in the submissions.
    """

    def __init__(
        self,
        manifest: Manifest,
        schema: AppSchema,
        *,
        hasher: FileHasher | None = None,
        keys: bool = True,
        write_media: bool = True,
    ) -> None:
        self.manifest = manifest
        self.endpoint: Endpoint = schema.endpoint(manifest.app.endpoint)
        self.api_name = self.endpoint.display_name
        self.hasher = hasher or default_hasher
        self.keys = keys
        self.write_media = write_media
        params = self.endpoint.parameters
        self.names = [p.name for p in params]
        self.params = {p.name: p for p in params}
        base = str(manifest.base_dir)
        self.coercers: dict[str, Coercer] = {
            p.name: coercer_for(p, base_dir=base, max_file_size=schema.max_file_size)
            for p in params
        }
        self.file_params = [p.name for p in params if p.is_file]
        self.file_set = frozenset(self.file_params)
        self.static_problems: list[Problem] = []
        inputs = manifest.inputs
        self.map = (
            None if inputs.map is None else {k: compile_template(v) for k, v in inputs.map.items()}
        )
        self.map_reads_matrix = self.map is not None and any(
            template_reads(t, inputs.matrix.keys()) for t in self.map.values()
        )
        self._check_static()
        self.combos = self._combos()

    # -- once per manifest -----------------------------------------------------------------

    def _check_static(self) -> None:
        inputs = self.manifest.inputs
        given: dict[str, tuple[str, ...]] = {}
        if inputs.map is not None:
            given.update({k: ("inputs", "map", k) for k in inputs.map})
        given.update({k: ("inputs", "matrix", k) for k in inputs.matrix})
        for name, path in given.items():
            if name not in self.params:
                self._static(path, ProblemKind.UNKNOWN_PARAMETER, name, self._unknown(name))
        if inputs.map is not None:
            for param in self.endpoint.parameters:
                if param.required and param.name not in given:
                    self._static(
                        ("inputs", "map"),
                        ProblemKind.MISSING_REQUIRED,
                        param.name,
                        f"inputs.map gives no value for the required parameter "
                        f"{param.name!r} ({param.component}, {param.python_type})",
                    )

    def _combos(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Matrix combinations as (raw values for placeholders, coerced parameter values)."""
        matrix = self.manifest.inputs.matrix
        if not matrix:
            return [({}, {})]
        coerced: dict[str, list[Any]] = {}
        for name, values in matrix.items():
            coerce = self.coercers.get(name)
            out = []
            for i, value in enumerate(values):
                try:
                    out.append(value if coerce is None else coerce(value))
                except Invalid as exc:
                    self._static(
                        ("inputs", "matrix", name, i), exc.kind, name, exc.summary, exc.detail
                    )
                    out.append(value)
            coerced[name] = out
        names = list(matrix)
        raw_product = itertools.product(*(matrix[n] for n in names))
        coerced_product = itertools.product(*(coerced[n] for n in names))
        return [
            (
                dict(zip(names, raw, strict=True)),
                {n: v for n, v in zip(names, values, strict=True) if n in self.params},
            )
            for raw, values in zip(raw_product, coerced_product, strict=True)
        ]

    def _static(
        self,
        path: tuple[str | int, ...],
        kind: ProblemKind,
        field: str,
        summary: str,
        detail: str = "",
    ) -> None:
        mark = self.manifest.mark(*path)
        where = mark.file if mark.line is None else f"{mark.file}:{mark.line}"
        self.static_problems.append(
            Problem(
                kind=kind,
                where=f"{where} ({dotted(path)})",
                field=field,
                summary=summary,
                detail=detail,
            )
        )

    def _unknown(self, name: str) -> str:
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        listing = ", ".join(repr(n) for n in self.names) or "none"
        return f"{self.api_name} has no parameter {name!r}{hint}; its parameters are {listing}"

    # -- once per row ----------------------------------------------------------------------

    def expand(self) -> Iterator[tuple[SourceRow, list[Submission], list[Problem]]]:
        """Every row with its submissions or its problems (what validation collects)."""
        for row in iter_rows(self.manifest):
            yield (row, *self.expand_row(row))

    def submissions_of(self, row: SourceRow) -> list[Submission]:
        """The row's submissions; `ValidationFailed` if it has a problem (what a run and
        its resume send: the rows were validated before, so this is never expected)."""
        submissions, problems = self.expand_row(row)
        self.raise_for(problems, rows=row.index + 1)
        return submissions

    def raise_for(self, problems: list[Problem], *, rows: int) -> None:
        """Raise `ValidationFailed` with `problems`, if any, found in the first `rows`."""
        if problems:
            report = ValidationReport.of(self.manifest, problems, endpoint=self.api_name)
            report.rows = rows
            raise ValidationFailed(report)

    def expand_row(self, row: SourceRow) -> tuple[list[Submission], list[Problem]]:
        """One row's submissions (one per matrix combination), or its problems."""
        if row.error is not None:
            problem = Problem(
                kind=ProblemKind.UNREADABLE_ROW,
                where=row.where,
                row=row.index,
                field=None,
                summary="rows that cannot be read",
                detail=row.error,
            )
            return [], [problem]
        return self._row(row)

    def _row(self, row: SourceRow) -> tuple[list[Submission], list[Problem]]:
        submissions: list[Submission] = []
        problems: list[Problem] = []
        shared: tuple[dict[str, Any], list[Problem]] | None = None
        for raw, direct in self.combos:
            if shared is None or self.map_reads_matrix:
                shared = self._given(row, raw)
            values, found = shared
            inputs = dict(values)
            inputs.update(direct)
            found = found + self._fill(inputs, row, {p.field for p in found})
            if found:
                problems.extend(p for p in found if p not in problems)
            elif not problems and not self.static_problems:
                try:
                    submissions.append(self._submission(row, inputs))
                except OSError as exc:  # a file vanished or became unreadable since its stat
                    problems.append(self._unreadable_file(row, exc))
        return (submissions, problems) if not problems else ([], problems)

    def _given(
        self, row: SourceRow, raw: Mapping[str, Any]
    ) -> tuple[dict[str, Any], list[Problem]]:
        """The row's coerced parameter values (before defaults) and what is wrong with them."""
        problems: list[Problem] = []
        given = row.values if self.map is None else self._mapped(row, raw, problems)
        values: dict[str, Any] = {}
        for name, value in given.items():
            if name in self.manifest.inputs.matrix:
                continue  # the matrix gives this parameter (already coerced)
            coerce = self.coercers.get(name)
            if coerce is None:
                if self.map is None:  # with a map, reported once for the manifest
                    problems.append(
                        _problem(row, name, ProblemKind.UNKNOWN_PARAMETER, self._unknown(name))
                    )
                continue
            if value is None:
                continue  # an empty cell: the endpoint's default
            try:
                values[name] = coerce(value)
            except Invalid as exc:
                problems.append(_problem(row, name, exc.kind, exc.summary, exc.detail))
        return values, problems

    def _mapped(
        self, row: SourceRow, raw: Mapping[str, Any], problems: list[Problem]
    ) -> dict[str, Any]:
        """The row through `inputs.map`: each parameter's template rendered from its cells."""
        assert self.map is not None
        context = {**row.values, **raw} if raw else row.values
        given = {}
        for name, template in self.map.items():
            try:
                given[name] = render_template(template, context)
            except KeyError as exc:
                columns = ", ".join(repr(c) for c in context) or "none"
                summary = (
                    f"inputs.map.{name}: {{{exc.args[0]}}} names no column of the row; "
                    f"its columns are {columns}"
                )
                problems.append(_problem(row, name, ProblemKind.UNKNOWN_COLUMN, summary))
        return given

    def _fill(self, inputs: dict[str, Any], row: SourceRow, bad: set[str | None]) -> list[Problem]:
        problems = []
        for param in self.endpoint.parameters:
            if param.name in inputs or param.name in bad:
                continue
            if param.required:
                if self.map is not None and param.name not in self.map:
                    continue  # reported once for the manifest
                problems.append(
                    Problem(
                        kind=ProblemKind.MISSING_REQUIRED,
                        where=row.where,
                        row=row.index,
                        field=param.name,
                        summary=f"no value for the required parameter {param.name!r} "
                        f"({param.component}, {param.python_type})",
                        detail="the cell is empty" if param.name in row.values else "",
                    )
                )
            else:
                inputs[param.name] = param.default
        return problems

    def _unreadable_file(self, row: SourceRow, exc: OSError) -> Problem:
        return Problem(
            kind=ProblemKind.FILE_MISSING,
            where=row.where,
            row=row.index,
            field=None,
            summary="a file cannot be read to compute the key",
            detail=f"{exc.filename}: {exc.strerror}",
        )

    def _submission(self, row: SourceRow, inputs: dict[str, Any]) -> Submission:
        ordered = {name: inputs[name] for name in self.names}
        key = ""
        if self.keys:
            key = key_of(self.api_name, ordered, self.file_set, self.hasher)
        files: list[str] = []
        for name in self.file_params:
            value = ordered[name]
            if self.write_media:
                ordered[name] = value = _written(value)
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and not is_url(item):
                    files.append(item)
        return Submission(
            key=key,
            row=row.index,
            where=row.where,
            line=row.line,
            inputs=ordered,
            files=tuple(files),
        )


def _written(value: Any) -> Any:
    """A file parameter's value with its dataset media cells written as files (plain paths:
    the submission then holds no bytes)."""
    if isinstance(value, MediaFile):
        return value.write()
    if isinstance(value, list) and any(isinstance(v, MediaFile) for v in value):
        return [v.write() if isinstance(v, MediaFile) else v for v in value]
    return value


def _problem(
    row: SourceRow, name: str, kind: ProblemKind, summary: str, detail: str = ""
) -> Problem:
    return Problem(
        kind=kind, where=row.where, row=row.index, field=name, summary=summary, detail=detail
    )
