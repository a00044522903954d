"""Validation against a real app's API: every kind of invalid row, grouped, with the place
and field the user sees, and the exit status."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.forms import forms_app

from jobs import AppSchema
from runner.errors import ExitStatus, ValidationFailed
from runner.inputs import ProblemKind, ValidationReport, validate_submissions
from runner.manifest import Manifest, load_manifest

DATA = Path(__file__).parent.parent / "data" / "manifests"


@pytest.fixture(scope="module")
def schema() -> Iterator[AppSchema]:
    with forms_app().serve() as app_schema:
        yield app_schema


def manifest(folder: Path, text: str, endpoint: str | None = "/form") -> Manifest:
    head = "app:\n  url: http://127.0.0.1:1\n"
    if endpoint:
        head += f"  endpoint: {endpoint}\n"
    path = folder / "m.yaml"
    path.write_text(head + textwrap.dedent(text))
    return load_manifest(path)


def report_for(folder: Path, schema: AppSchema, text: str, **kw: Any) -> ValidationReport:
    return validate_submissions(manifest(folder, text, **kw), schema)


def lines(report: ValidationReport) -> list[str]:
    return report.format().splitlines()


def test_valid_manifest(tmp_path: Path, schema: AppSchema) -> None:
    report = report_for(tmp_path, schema, "inputs: {rows: [{text: a, count: 1}]}\n")
    assert report.ok and report.exit_status == ExitStatus.OK
    assert report.format() == f"{tmp_path / 'm.yaml'}: 1 submission from 1 row fit /form."


# Invalid rows: (inputs section, expected group headline, expected example line).
# `{m}` is the manifest's path, `{dir}` its folder.
INVALID = {
    "unknown_parameter": (
        "inputs: {rows: [{txt: a, count: 1}]}\n",
        "unknown parameter: /form has no parameter 'txt' (did you mean 'text'?); its parameters "
        "are 'text', 'count', 'scale', 'flag', 'mode', 'tags', 'audio', 'extra' [1 row]",
        "  {m}:4 (row 0)",
    ),
    "missing_required": (
        "inputs: {rows: [{text: a}]}\n",
        "missing required parameter: no value for the required parameter 'count' "
        "(Number, int) [1 row]",
        "  {m}:4 (row 0)",
    ),
    "not_a_number": (
        "inputs: {rows: [{text: a, count: 1, scale: big}]}\n",
        "value of the wrong type: scale (Slider): expected a number [1 row]",
        "  {m}:4 (row 0): got 'big'",
    ),
    "not_a_whole_number": (
        "inputs: {rows: [{text: a, count: 1.5}]}\n",
        "value of the wrong type: count (Number): expected a whole number [1 row]",
        "  {m}:4 (row 0): got 1.5",
    ),
    "not_a_bool": (
        "inputs: {rows: [{text: a, count: 1, flag: maybe}]}\n",
        "value of the wrong type: flag (Checkbox): expected true or false [1 row]",
        "  {m}:4 (row 0): got 'maybe'",
    ),
    "list_for_text": (
        "inputs: {rows: [{text: [a, b], count: 1}]}\n",
        "value of the wrong type: text (Textbox): expected text [1 row]",
        "  {m}:4 (row 0): got a list (quote it to send it as text)",
    ),
    "radio_choice": (
        "inputs: {rows: [{text: a, count: 1, mode: fsat}]}\n",
        "value outside the choices: mode (Radio): expected one of 'fast', 'slow' [1 row]",
        "  {m}:4 (row 0): got 'fsat' (did you mean 'fast'?)",
    ),
    "multiselect_choice": (
        "inputs: {rows: [{text: a, count: 1, tags: [a, z]}]}\n",
        "value outside the choices: tags (Checkboxgroup): expected one of 'a', 'b', 'c' [1 row]",
        "  {m}:4 (row 0): got 'z'",
    ),
    "file_missing": (
        "inputs: {rows: [{text: a, count: 1, audio: clips/none.wav}]}\n",
        "file not found: audio (Audio): the file does not exist [1 row]",
        "  {m}:4 (row 0): 'clips/none.wav' (looked for {dir}/clips/none.wav)",
    ),
    "file_too_large": (
        "inputs: {rows: [{text: a, count: 1, audio: big.wav}]}\n",
        "file over the app's size limit: audio (Audio): the file is over the app's limit of "
        "1.0 KB [1 row]",
        "  {m}:4 (row 0): 'big.wav' is 2.0 KB",
    ),
    "map_names_unknown_parameter": (
        "inputs:\n  rows: [{t: a}]\n  map: {text: '{t}', count: 1, langage: en}\n",
        "unknown parameter: /form has no parameter 'langage'; its parameters are 'text', "
        "'count', 'scale', 'flag', 'mode', 'tags', 'audio', 'extra'",
        "  {m}:6 (inputs.map.langage)",
    ),
    "map_misses_required": (
        "inputs:\n  rows: [{t: a}]\n  map: {text: '{t}'}\n",
        "missing required parameter: inputs.map gives no value for the required parameter "
        "'count' (Number, int)",
        "  {m}:6 (inputs.map)",
    ),
    "placeholder_without_column": (
        "inputs:\n  rows: [{t: a}]\n  map: {text: '{tt}', count: 1}\n",
        "placeholder without a column: inputs.map.text: {tt} names no column of the row; its "
        "columns are 't' [1 row]",
        "  {m}:5 (row 0)",
    ),
    "bad_matrix_value": (
        "inputs:\n  rows: [{text: a, count: 1}]\n  matrix: {mode: [fast, turbo]}\n",
        "value outside the choices: mode (Radio): expected one of 'fast', 'slow'",
        "  {m}:6 (inputs.matrix.mode[1]): got 'turbo'",
    ),
    "unreadable_jsonl_row": (
        "inputs: {jsonl: rows.jsonl}\n",
        "unreadable row: rows that cannot be read [1 row]",
        "  {dir}/rows.jsonl:2 (row 1): is not valid JSON",
    ),
    "csv_row_with_extra_cells": (
        "inputs: {csv: rows.csv}\n",
        "unreadable row: rows that cannot be read [1 row]",
        "  {dir}/rows.csv:3 (row 1): has 3 cells but the header has 2 columns",
    ),
    "csv_without_rows": (
        "inputs: {csv: header_only.csv}\n",
        "no rows: the inputs give no rows, so there is nothing to run",
        "  {m}:4 (inputs.csv)",
    ),
}


@pytest.mark.parametrize("case", sorted(INVALID))
def test_invalid_rows_are_reported_with_place_and_field(
    tmp_path: Path, schema: AppSchema, case: str
) -> None:
    text, headline, example = INVALID[case]
    (tmp_path / "big.wav").write_bytes(b"x" * 2000)
    (tmp_path / "rows.jsonl").write_text('{"text": "a", "count": 1}\n{"text": \n')
    (tmp_path / "rows.csv").write_text("text,count\na,1\nb,2,3\n")
    (tmp_path / "header_only.csv").write_text("text,count\n")
    report = report_for(tmp_path, schema, text)
    shown = lines(report)
    assert report.exit_status == ExitStatus.FAILED
    assert shown[0].startswith(f"{tmp_path / 'm.yaml'}: ")
    assert shown[0].endswith("for /form; nothing was submitted.")
    assert headline in shown, shown
    place = example.replace("{m}", str(tmp_path / "m.yaml")).replace("{dir}", str(tmp_path))
    below = shown[shown.index(headline) + 1]
    assert below.startswith(place), below


def test_missing_endpoint_lists_the_existing_ones(tmp_path: Path, schema: AppSchema) -> None:
    report = report_for(tmp_path, schema, "inputs: {rows: [{text: a}]}\n", endpoint="/from")
    assert lines(report)[2:] == [
        "missing endpoint: the app has no endpoint '/from' (did you mean '/form'?); its "
        "endpoints are '/form', '/echo'",
        f"  {tmp_path / 'm.yaml'}:3 (app.endpoint)",
    ]


def test_endpoint_required_when_the_app_has_several(tmp_path: Path, schema: AppSchema) -> None:
    report = report_for(tmp_path, schema, "inputs: {rows: [{text: a}]}\n", endpoint=None)
    assert lines(report)[2] == (
        "missing endpoint: the app has several endpoints; say which one with app.endpoint "
        "(or --endpoint): '/form', '/echo'"
    )


def test_all_problems_at_once_grouped_with_counts(tmp_path: Path, schema: AppSchema) -> None:
    """1,000 bad rows of two kinds: each group shows 3 rows, then how many more."""
    with open(tmp_path / "rows.csv", "w") as handle:
        handle.write("text,count,mode\n")
        for i in range(1000):
            handle.write(f"t{i},{'x' if i % 2 else i},{'fast' if i % 4 else 'quick'}\n")
    report = report_for(tmp_path, schema, "inputs: {csv: rows.csv}\n")
    csv = tmp_path / "rows.csv"
    assert report.rows == 1000 and report.submissions == 250
    assert report.counts() == {ProblemKind.WRONG_TYPE: 500, ProblemKind.NOT_A_CHOICE: 250}
    assert lines(report) == [
        f"{tmp_path / 'm.yaml'}: 750 problems in 1,000 rows for /form; nothing was submitted.",
        "",
        "value of the wrong type: count (Number): expected a whole number [500 rows]",
        f"  {csv}:3 (row 1): got 'x'",
        f"  {csv}:5 (row 3): got 'x'",
        f"  {csv}:7 (row 5): got 'x'",
        "  ... and 497 more rows",
        "",
        "value outside the choices: mode (Radio): expected one of 'fast', 'slow' [250 rows]",
        f"  {csv}:2 (row 0): got 'quick'",
        f"  {csv}:6 (row 4): got 'quick'",
        f"  {csv}:10 (row 8): got 'quick'",
        "  ... and 247 more rows",
    ]


def test_raise_for_problems_carries_the_report(tmp_path: Path, schema: AppSchema) -> None:
    report = report_for(tmp_path, schema, "inputs: {rows: [{text: a}]}\n")
    with pytest.raises(ValidationFailed) as info:
        report.raise_for_problems()
    assert info.value.report is report and info.value.exit_status == ExitStatus.FAILED
    assert str(info.value) == report.format()


def test_csv_manifest_validates_with_app_from_command_line(
    tmp_path: Path, schema: AppSchema
) -> None:
    (tmp_path / "rows.csv").write_text("text,count\nhello,1\nworld,\n")
    m = load_manifest(tmp_path / "rows.csv", app="http://127.0.0.1:1", endpoint="/form")
    report = validate_submissions(m, schema)
    assert lines(report)[2:] == [
        "missing required parameter: no value for the required parameter 'count' "
        "(Number, int) [1 row]",
        f"  {tmp_path / 'rows.csv'}:3 (row 1): the cell is empty",
    ]
