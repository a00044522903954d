"""What can be wrong with one submission, as data: a kind, a place, a field, a message."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

__all__ = ["Invalid", "Problem", "ProblemKind"]


class ProblemKind(str, Enum):
    """Kinds of problems, in the order a report lists them."""

    MISSING_ENDPOINT = "missing endpoint"
    NO_ROWS = "no rows"
    UNREADABLE_ROW = "unreadable row"
    UNKNOWN_PARAMETER = "unknown parameter"
    UNKNOWN_COLUMN = "placeholder without a column"
    MISSING_REQUIRED = "missing required parameter"
    WRONG_TYPE = "value of the wrong type"
    NOT_A_CHOICE = "value outside the choices"
    FILE_MISSING = "file not found"
    FILE_TOO_LARGE = "file over the app's size limit"


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with one row (or with the manifest itself).

    Problems with the same `kind`, `field` and `summary` form one group in a report:
    `summary` says what is wrong in general ("unknown parameter 'txt' (did you mean
    'text'?)"), `detail` what is wrong in this row ("'abc' is not a number").
    """

    kind: ProblemKind
    where: str
    field: str | None
    summary: str
    detail: str = ""
    #: The 0-based input row, or None for a problem with the manifest itself.
    row: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.detail or self.summary}"


class Invalid(Exception):
    """Raised by a coercer: the value cannot be this parameter's."""

    def __init__(self, kind: ProblemKind, summary: str, detail: str = "") -> None:
        super().__init__(detail or summary)
        self.kind = kind
        self.summary = summary
        self.detail = detail
