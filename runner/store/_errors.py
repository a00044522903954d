"""The store's errors, and the one place where the file system's refusals become them.

Every `OSError` met while creating or writing the run folder is raised again as a
`RunFolderError` naming the path, what was being done and what to do about it, so the
CLI reports it (exit 2) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import RunnerError

__all__ = [
    "DuplicateResultError",
    "ResultsError",
    "RunFolderError",
    "RunFolderLockedError",
    "folder_errors",
]


class ResultsError(RunnerError):
    """A results file cannot be written as asked."""


class DuplicateResultError(ResultsError):
    """A record was appended for a key that is already recorded ok."""


class RunFolderLockedError(ResultsError):
    """Another process has the run folder open for writing."""


class RunFolderError(ResultsError):
    """The file system refused the run folder: a file where a folder should be, no
    permission, a read-only or full disk. `path` is where, `errno` the system's code."""

    def __init__(self, message: str, *, path: str, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


_NO_RIGHTS = {errno.EACCES, errno.EPERM}
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


@contextlib.contextmanager
def folder_errors(doing: str, path: str | os.PathLike[str]) -> Iterator[None]:
    """Raise an `OSError` of the block as a `RunFolderError` about `path` (its own
    filename when it has one): `doing` says what failed, like "write the results to"."""
    try:
        yield
    except OSError as exc:
        raise folder_error(exc, doing, path) from exc


def folder_error(exc: OSError, doing: str, path: str | os.PathLike[str]) -> RunFolderError:
    where = Path(exc.filename) if isinstance(exc.filename, str) else Path(path)
    code = exc.errno
    why = exc.strerror or type(exc).__name__
    blocker = _file_in_the_way(where)
    if code in (errno.ENOTDIR, errno.EEXIST) and blocker is not None:
        message = (
            f"cannot {doing} {where}: {blocker} is a file where spacerun needs a folder; "
            "move it away, or choose another output.dir"
        )
    elif code == errno.EISDIR:
        message = f"cannot {doing} {where}: it is a folder where spacerun needs a file"
    elif code in _NO_RIGHTS:
        message = (
            f"cannot {doing} {where}: no permission ({why}); check the owner and "
            "permissions of the run folder, or choose another output.dir"
        )
    elif code == errno.EROFS:
        message = f"cannot {doing} {where}: the file system is read-only; choose another output.dir"
    elif code in _FULL:
        message = (
            f"cannot {doing} {where}: the disk is full ({why}); free some space, then run the "
            "same command again: it resumes, and nothing already recorded is lost"
        )
    else:
        message = f"cannot {doing} {where}: {why}"
    return RunFolderError(message, path=str(where), errno=code)


def _file_in_the_way(path: Path) -> Path | None:
    """The nearest of `path` and its parents that exists and is not a folder."""
    for candidate in (path, *path.parents):
        if candidate.exists() or candidate.is_symlink():
            return None if candidate.is_dir() else candidate
    return None
