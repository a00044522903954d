"""Secrets kept out of what a run writes: its records, its log lines, the app logs.

The manifest's `Redactor` knows the values of the secret variables it used. Submissions
keep the real values (the app needs them, and keys are computed from them so resume
finds done rows); each record is masked on its way to `results.jsonl`, and the report,
exports and `spacerun status` are made from those lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ..manifest import Redactor
from ..store import ResultRecord

__all__ = ["RedactingFilter", "mask_error", "masked_record", "masking_logs", "scrub_logs"]


def masked_record(record: ResultRecord, redactor: Redactor) -> ResultRecord:
    """`record` with every secret masked: inputs, outputs (an app may echo its input),
    the error message and causes (an app error may quote the bad value), the replica —
    every field but the key and status, so that a field added later is masked too."""
    if not redactor:
        return record
    changes = {
        f.name: redactor.mask_value(getattr(record, f.name))
        for f in dataclasses.fields(record)
        if f.name not in _UNMASKED
    }
    return dataclasses.replace(record, **changes)


#: What the store indexes a line by; never text from the app or the manifest (and a
#: short secret such as "ok" must not replace a status).
_UNMASKED = frozenset({"key", "status"})


def mask_error(error: BaseException, redactor: Redactor) -> BaseException:
    """`error`, masked in place: the text of the error a run ends with may quote an app's
    message or an input (its `str` is made from `args`; `message`-like attributes too)."""
    if redactor:
        error.args = tuple(redactor.mask_value(arg) for arg in error.args)
        for name in ("message", "app_message", "detail"):
            value = getattr(error, name, None)
            if isinstance(value, str):
                with contextlib.suppress(AttributeError):
                    setattr(error, name, redactor.mask(value))
    return error


class RedactingFilter(logging.Filter):
    """Masks secrets in a log record's message and traceback before any handler writes it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.redactor.mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            # The formatter reuses `exc_text`: filled here, the traceback is masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.mask(record.exc_text)
        return True


@contextlib.contextmanager
def masking_logs(redactor: Redactor) -> Iterator[None]:
    """While a run goes: every handler of the root logger (or Python's last resort, with
    none configured) masks secrets.

    A filter on a logger does not see records of its child loggers (`runner.store`,
    `jobs`, ...), a handler's filter sees every record it writes: so the handlers get it.
    """
    if not redactor:
        yield
        return
    found = RedactingFilter(redactor)
    handlers = list(logging.getLogger().handlers)
    if logging.lastResort is not None:  # what writes warnings when nothing is configured
        handlers.append(logging.lastResort)
    for handler in handlers:
        handler.addFilter(found)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(found)


def scrub_logs(log_dir: Path, redactor: Redactor) -> None:
    """Mask secrets in the app logs of `log_dir` (local copies write there straight from
    their process, and an app may print its inputs or its errors: gr.Error prints the
    message). Done once the copies have stopped; a file that cannot be rewritten is left
    as it is rather than failing the run's end."""
    if not redactor or not log_dir.is_dir():
        return
    for path in sorted(log_dir.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        with contextlib.suppress(OSError):
            data = path.read_bytes()
            masked = redactor.mask_bytes(data)
            if masked != data:
                partial = path.with_name(path.name + ".masking")
                partial.write_bytes(masked)
                os.replace(partial, path)
