"""Rows -> keyed, coerced, validated submissions: sources, templates, matrix, keys, report.

Lazy: rows are read and expanded as they are consumed; a million never sit in memory.
"""

from ._dataset import reading_from_hub
from ._expand import Expander, Submission, batched, iter_submissions
from ._keys import FileHasher, submission_key
from ._media import media_columns
from ._problems import Problem, ProblemKind
from ._report import ProblemGroup, ValidationReport
from ._sources import SourceRow, iter_rows
from ._validate import validate_submissions

__all__ = [
    "Expander",
    "FileHasher",
    "Problem",
    "ProblemGroup",
    "ProblemKind",
    "SourceRow",
    "Submission",
    "ValidationReport",
    "batched",
    "iter_rows",
    "iter_submissions",
    "media_columns",
    "reading_from_hub",
    "submission_key",
    "validate_submissions",
]
