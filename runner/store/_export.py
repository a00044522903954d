"""A run folder's results as a table (CSV / Parquet / JSONL), through pandas.

It only reads: it never repairs, locks or touches an app, so it is safe to use while a
run is writing to the same folder (a line being written is ignored). The run's status
without pandas is in `runner.store._status`.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._index import KeyIndex
from ._results import RecordStatus
from ._runfolder import RunDir, RunFolder
from ._scan import blocks, counting_lines, mapped, scan_results

__all__ = ["ExportFormat", "Failure", "RunStatus", "export", "load_table", "read_status"]

# Kept importable from here for callers that know them by this module.
from ._status import Failure, RunStatus, read_status

logger = logging.getLogger(__name__)

ExportFormat = Literal["csv", "parquet", "jsonl"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet", "jsonl")

_HEAD = ("key", "row", "status")
_TAIL = (
    "error_type",
    "error_message",
    "attempts",
    "causes",
    "replica",
    "queue_time",
    "run_time",
    "finished_at",
)
_FAILED_STATUSES = frozenset({RecordStatus.ERROR, RecordStatus.TIMEOUT})


# --- The table ------------------------------------------------------------------


def export(
    run_dir: RunDir, format: ExportFormat = "csv", out: str | os.PathLike[str] | None = None
) -> Path:
    """Write the run's results as one table and return its path.

    One row per key (its ok record, else its latest), sorted by row; columns
    key, row, status, `inputs.<name>`, `outputs.<name>`, error_type,
    error_message, attempts, causes, replica, queue_time, run_time, finished_at.
    In CSV and Parquet, nested values (lists, dicts) are JSON strings, and so are
    the values of a column that mixes types; JSONL keeps them as they are.
    `out` defaults to `export.<format>` in the run folder. The file is replaced
    atomically. Blocking: call it through `anyio.to_thread.run_sync` from async code.

    Read it back with `pd.read_parquet(out)`, `pd.read_csv(out)` (add
    `dtype={"key": str}` if keys could look like numbers) or
    `pd.read_json(out, lines=True, convert_dates=False)` (pandas otherwise turns
    columns named `*_at` / `*_time` into dates).
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(
            f"unknown export format {format!r}; use one of {', '.join(EXPORT_FORMATS)}"
        )
    folder = RunFolder.at(run_dir)
    target = Path(out) if out is not None else folder.export_path(format)
    if target.resolve() == folder.results_path.resolve():
        raise ValueError(f"refusing to export over the results file itself ({target})")
    table = load_table(folder, nested="native" if format == "jsonl" else "json")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        _write(table, tmp, format)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


def load_table(run_dir: RunDir, *, nested: Literal["json", "native"] = "json") -> pd.DataFrame:
    """The results as a DataFrame, one row per key, as `export` writes it.

    Two passes over the file: the first finds the line that counts for each key
    (from the line prefixes alone), the second parses only those lines, block by
    block, so memory grows with the table, not with the file.
    """
    path = RunFolder.at(run_dir).results_path
    scan = scan_results(path)
    scan.status = KeyIndex()  # only the line numbers are needed from here on
    wanted = np.flatnonzero(np.frombuffer(counting_lines(path, scan), dtype=np.uint8))
    frames = [
        pd.DataFrame.from_records(rows)
        for rows in _selected_rows(path, wanted, scan.end_offset, nested == "json")
        if rows
    ]
    if not frames:
        empty: pd.DataFrame = pd.DataFrame(columns=[*_HEAD, *_TAIL])
        return empty
    table = pd.concat(frames, ignore_index=True, sort=False)
    table = table[_column_order(table.columns)]
    if nested == "json":
        table = _mixed_columns_as_json(table)
    ordered: pd.DataFrame = table.sort_values(["row", "key"], kind="stable", ignore_index=True)
    return ordered


def _selected_rows(
    path: Path, wanted: np.ndarray[Any, Any], stop: int, as_json: bool
) -> Iterator[list[dict[str, Any]]]:
    with mapped(path) as buf:
        for block in blocks(buf, stop):
            first, last = block.first_line, block.first_line + block.n_lines
            lo, hi = np.searchsorted(wanted, [first, last])
            if lo == hi:
                continue
            lines = block.lines()
            rows = []
            for ordinal in wanted[lo:hi].tolist():
                try:
                    rows.append(_flatten(json.loads(lines[ordinal - first]), as_json))
                except ValueError:
                    logger.warning(
                        "results line %d is not valid JSON; left out of the table", ordinal + 1
                    )
            yield rows


def _flatten(data: dict[str, Any], as_json: bool) -> dict[str, Any]:
    encode = _as_json if as_json else _identity
    row = {name: data.get(name) for name in _HEAD}
    for group in ("inputs", "outputs"):
        for name, value in (data.get(group) or {}).items():
            row[f"{group}.{name}"] = encode(value)
    for name in _TAIL:
        row[name] = encode(data.get(name))
    return row


def _as_json(value: Any) -> Any:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value


def _identity(value: Any) -> Any:
    return value


def _column_order(columns: pd.Index) -> list[str]:
    names = [str(c) for c in columns]
    inputs = [c for c in names if c.startswith("inputs.")]
    outputs = [c for c in names if c.startswith("outputs.")]
    return [*_HEAD, *inputs, *outputs, *_TAIL]


def _mixed_columns_as_json(table: pd.DataFrame) -> pd.DataFrame:
    # Parquet needs one type per column; an output that is sometimes a number and
    # sometimes text becomes text, JSON-encoded where it was not a string.
    for name in table.columns:
        column = table[name]
        if column.dtype != object:
            continue
        kinds = {type(v) for v in column if not _is_missing(v)}
        if len(kinds) > 1 and not kinds <= {int, float}:
            table[name] = column.map(
                lambda v: v if _is_missing(v) or isinstance(v, str) else json.dumps(v)
            )
    return table


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _write(table: pd.DataFrame, path: Path, format: ExportFormat) -> None:
    if format == "csv":
        table.to_csv(path, index=False)
    elif format == "parquet":
        table.to_parquet(path, index=False)
    else:
        # Written by hand rather than DataFrame.to_json, which rounds floats to 15 digits.
        with open(path, "w", encoding="utf-8") as handle:
            for start in range(0, len(table), _JSONL_ROWS):
                for record in table.iloc[start : start + _JSONL_ROWS].to_dict(orient="records"):
                    clean = {k: None if _is_missing(v) else v for k, v in record.items()}
                    handle.write(json.dumps(clean, ensure_ascii=False, default=_numpy_default))
                    handle.write("\n")


_JSONL_ROWS = 10_000


def _numpy_default(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
