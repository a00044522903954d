"""What validation found, grouped: each kind of problem once, with a few examples and a count."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ExitStatus, ValidationFailed
from ..manifest import MIN_MASKED_LENGTH, Manifest, Redactor
from ._problems import Problem, ProblemKind

__all__ = ["ProblemGroup", "ValidationReport"]

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
    #: Masks secrets in what `format` writes: a problem may quote the value it refused.
    redactor: Redactor = dataclasses.field(default_factory=Redactor, repr=False)
    #: Parameters whose value carries a secret, with its variables: `format` says so.
    secret_inputs: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    _index: dict[tuple[ProblemKind, str | None, str], ProblemGroup] = dataclasses.field(
        default_factory=dict, repr=False
    )

    @classmethod
    def of(
        cls, manifest: Manifest, problems: Iterable[Problem], *, endpoint: str | None = None
    ) -> ValidationReport:
        report = cls(manifest=manifest.display_path, endpoint=endpoint or manifest.app.endpoint)
        report.keep_secrets_of(manifest)
        for problem in problems:
            report.add(problem)
        return report

    def keep_secrets_of(self, manifest: Manifest) -> None:
        """Mask `manifest`'s secrets in the text, and say which inputs carry one."""
        self.redactor = manifest.redactor
        self.secret_inputs = manifest.secret_inputs()

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
    def exit_status(self) -> ExitStatus:
        return ExitStatus.OK if self.ok else ExitStatus.FAILED

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
            lines = [
                f"{self.manifest}: {_n(self.submissions, 'submission')} from "
                f"{_n(self.rows, 'row')} fit {target}."
            ]
            return self.redactor.mask("\n".join(lines + self.secrets_note()))
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
        note = self.secrets_note()
        return self.redactor.mask("\n".join(lines + (["", *note] if note else [])))

    def secrets_note(self) -> list[str]:
        """Which inputs carry a secret (recorded masked), and the secrets too short to be
        searched for in text."""
        if not self.secret_inputs:
            return []
        params = ", ".join(self.secret_inputs)
        names = ", ".join(dict.fromkeys(n for ns in self.secret_inputs.values() for n in ns))
        verb = "carries a secret" if len(self.secret_inputs) == 1 else "carry secrets"
        lines = [
            f"input{'s' if len(self.secret_inputs) > 1 else ''} {params} {verb} ({names}): "
            "recorded masked, as ${NAME}, in the run folder, its logs and exports"
        ]
        short = [n for n in self.redactor.short if any(n in v for v in self.secret_inputs.values())]
        if short:
            lines.append(
                f"  {', '.join(short)} {'is' if len(short) == 1 else 'are'} shorter than "
                f"{MIN_MASKED_LENGTH} characters: masked only where a whole value is exactly "
                "it, not inside other text"
            )
        return lines


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
