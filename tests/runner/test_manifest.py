"""Loading manifests: every key, CSV manifests, overrides, ${VAR}, and the messages users see
for malformed manifests (file, line, key, what is expected)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
import yaml

from runner.errors import ExitStatus, ManifestError, RunnerError, UnsetVariable
from runner.manifest import (
    DuplicateReplica,
    LocalReplica,
    Rate,
    Secret,
    SourceKind,
    SpaceReplica,
    UrlReplica,
    format_duration,
    load_manifest,
    parse_duration,
    parse_rate,
)

DATA = Path(__file__).parent.parent / "data" / "manifests"
TOKEN_ENV = {"SPACERUN_TEST_TOKEN": "hf_secret_value"}


def write(folder: Path, text: str, name: str = "m.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_every_key_is_read_with_its_type() -> None:
    """full.yaml sets every key; each lands in the model with its parsed type."""
    m = load_manifest(DATA / "full.yaml", environ=TOKEN_ENV)
    assert m.name == "full-demo"
    assert m.app.endpoint == "/form"
    url, space, dup, local = m.app.replicas
    assert url == UrlReplica(url="http://127.0.0.1:7860", concurrency=2)
    assert space == SpaceReplica(space="owner/name")
    assert dup == DuplicateReplica(
        space="owner/name", count=3, hardware="t4-small", private=False,
        sleep_timeout=3600.0, to_id="me/copy",
    )  # fmt: skip
    assert isinstance(local, LocalReplica)
    assert local.script == DATA / "forms_app.py"
    assert (local.count, local.python) == (2, "python3")
    assert local.env == {"GREETING": "hi", "WORKERS": "4"}
    assert local.args == ("--flag", "1")
    assert m.app.hf_token is not None and m.app.hf_token.reveal() == "hf_secret_value"
    assert m.inputs.source is SourceKind.CSV and m.inputs.path == DATA / "sentences.csv"
    assert m.inputs.map == {"text": "{sentence}", "count": 1, "mode": "{speed}"}
    assert m.inputs.matrix == {"scale": (1, 2.5)}
    assert (m.inputs.limit, m.inputs.delimiter, m.inputs.encoding) == (2, ",", "utf-8")
    assert m.run.concurrency == 8 and m.run.rate == Rate(count=600, per=60)
    assert (m.run.retries, m.run.timeout, m.run.grace) == (5, 5400.0, 0.25)
    assert m.run.retry_app_errors and m.run.share_session
    assert m.output.dir == DATA / "out" / "full"
    assert m.output.export == ("csv", "parquet") and m.output.download_files is False


def test_defaults_of_a_minimal_manifest(tmp_path: Path) -> None:
    """Only app: given: name from the file, one empty row, documented run defaults."""
    m = load_manifest(write(tmp_path, "app: http://127.0.0.1:7860\n", "my-batch.yaml"))
    assert m.name == "my-batch"
    assert m.app.replicas == (UrlReplica(url="http://127.0.0.1:7860"),)
    assert m.app.endpoint is None and m.app.hf_token is None
    assert m.inputs.source is SourceKind.NONE
    assert (m.run.concurrency, m.run.retries, m.run.timeout, m.run.rate) == (4, 3, 600.0, None)
    assert m.output.dir == tmp_path / "runs" / "my-batch"
    assert m.output.download_files is True
    assert m.run.queue_ahead is None and m.run.hedge is True  # sized per replica; hedged


def test_queue_ahead_and_hedge_can_be_turned_off(tmp_path: Path) -> None:
    text = "app: http://127.0.0.1:7860\nrun:\n  queue_ahead: 0\n  hedge: false\n"
    m = load_manifest(write(tmp_path, text))
    assert (m.run.queue_ahead, m.run.hedge) == (0, False)
    assert m.to_dict()["run"]["queue_ahead"] == 0 and m.to_dict()["run"]["hedge"] is False
    capped = load_manifest(write(tmp_path, "app: http://h:1\nrun: {queue_ahead: 3}\n"))
    assert capped.run.queue_ahead == 3
    assert load_manifest(write(tmp_path, "app: http://h:1\n")).to_dict()["run"]["queue_ahead"] == (
        "auto"
    )


def test_app_shorthands(tmp_path: Path) -> None:
    """app: may be one string, or url:/space: directly; bare strings in replicas work too."""
    m = load_manifest(write(tmp_path, "app: {space: owner/name, endpoint: /predict}\n"))
    assert m.app.replicas == (SpaceReplica(space="owner/name"),)
    m = load_manifest(write(tmp_path, "app:\n  replicas: [http://h:1, owner/name]\n"))
    assert m.app.replicas == (UrlReplica(url="http://h:1"), SpaceReplica(space="owner/name"))
    assert m.app.probe_target == UrlReplica(url="http://h:1")


def test_csv_file_is_a_manifest_with_app_from_the_command_line() -> None:
    """`spacerun run rows.csv --app X --endpoint /p`: a URL, a Space id or a script."""
    m = load_manifest(DATA / "sentences.csv", app="http://127.0.0.1:9/", endpoint="predict")
    assert m.name == "sentences"
    assert m.inputs.source is SourceKind.CSV and m.inputs.path == DATA / "sentences.csv"
    assert m.app.replicas == (UrlReplica(url="http://127.0.0.1:9"),)
    assert m.app.endpoint == "/predict"
    assert load_manifest(DATA / "sentences.csv", app="me/app").app.replicas == (
        SpaceReplica(space="me/app"),
    )
    local = load_manifest(DATA / "sentences.csv", app=str(DATA / "forms_app.py"))
    assert isinstance(local.app.replicas[0], LocalReplica)


def test_csv_manifest_without_app_says_how_to_give_one() -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(DATA / "sentences.csv")
    assert str(info.value).startswith(f"{DATA / 'sentences.csv'}: app: ")
    assert "pass --app URL_OR_SPACE" in str(info.value)


def test_set_overrides_any_key(tmp_path: Path) -> None:
    """--set takes dotted keys (list items by index); values are read as YAML."""
    m = load_manifest(
        DATA / "full.yaml",
        environ=TOKEN_ENV,
        overrides=[
            "run.concurrency=16",
            "run.rate=5/s",
            "output.export=[jsonl]",
            "app.replicas.1.space=other/space",
            "inputs.limit=1",
        ],
    )
    assert m.run.concurrency == 16 and m.run.rate == Rate(count=5)
    assert m.output.export == ("jsonl",)
    assert m.app.replicas[1] == SpaceReplica(space="other/space")
    assert m.inputs.limit == 1


def test_override_mistake_names_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(DATA / "full.yaml", environ=TOKEN_ENV, overrides=["run.concurency=8"])
    assert str(info.value) == (
        "--set run.concurency=8: run.concurency: unknown key 'concurency' (did you mean "
        "'concurrency'?); expected one of concurrency, rate, retries, timeout, "
        "retry_app_errors, retry_timeouts, grace, share_session, queue_ahead, hedge, max_wait, "
        "budget, deadline, stuck_after, notify, ray"
    )
    with pytest.raises(ManifestError, match="expected KEY=VALUE"):
        load_manifest(DATA / "full.yaml", environ=TOKEN_ENV, overrides=["run.concurrency"])


def test_interpolation_defaults_and_dollar_escape(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        app: ${TARGET:-http://127.0.0.1:7860}
        inputs:
          rows: [{text: "costs $$5 in ${CITY}"}]
        """,
    )
    m = load_manifest(path, environ={"CITY": "Paris"})
    assert m.app.replicas == (UrlReplica(url="http://127.0.0.1:7860"),)
    assert m.inputs.rows == ({"text": "costs $5 in Paris"},)


def test_secret_never_shows_and_dump_leaves_it_out(tmp_path: Path) -> None:
    """repr/str of the manifest hide the token; to_dict() writes ${VAR} text back."""
    m = load_manifest(DATA / "full.yaml", environ=TOKEN_ENV)
    assert "hf_secret_value" not in repr(m) and "hf_secret_value" not in str(m.app.hf_token)
    assert repr(Secret("x")) == "Secret('********')"
    dumped = m.to_dict()
    assert dumped["app"]["hf_token"] == "${SPACERUN_TEST_TOKEN}"
    assert "hf_secret_value" not in yaml.safe_dump(dumped)
    assert m.to_dict(redact=False)["app"]["hf_token"] == "hf_secret_value"
    literal = write(tmp_path, "app: {url: 'http://h:1', hf_token: hf_literal}\n")
    assert "hf_token" not in load_manifest(literal).to_dict()["app"]


def test_dump_reads_back_as_the_same_manifest(tmp_path: Path) -> None:
    m = load_manifest(DATA / "full.yaml", environ=TOKEN_ENV)
    again = write(tmp_path, yaml.safe_dump(m.to_dict()), "resolved.yaml")
    reloaded = load_manifest(again, environ=TOKEN_ENV)
    assert reloaded.app == m.app and reloaded.run == m.run and reloaded.output == m.output
    assert reloaded.inputs == m.inputs


def test_yes_and_dates_stay_text(tmp_path: Path) -> None:
    """YAML 1.1 would read `no` as False and 2024-01-02 as a date; users mean the text."""
    m = load_manifest(write(tmp_path, "app: a/b\ninputs: {rows: [{lang: no, day: 2024-01-02}]}\n"))
    assert m.inputs.rows == ({"lang": "no", "day": "2024-01-02"},)


def test_durations_and_rates() -> None:
    assert parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25
    assert parse_duration("90s") == 90 and parse_duration(45) == 45
    assert format_duration(5400) == "1h30m" and format_duration(0.25) == "250ms"
    assert parse_rate("10/s").per_second == 10 and parse_rate("1/h").per_second == 1 / 3600
    assert parse_rate("5/10s").per_second == 0.5 and str(parse_rate("600/min")) == "600/min"
    with pytest.raises(ValueError, match="expected a duration like 90s"):
        parse_duration("ten minutes")
    with pytest.raises(ValueError, match="expected a rate like 10/s"):
        parse_rate("fast")


# Malformed manifests: (YAML, the message the user sees). `{file}` is the manifest's path.
MALFORMED = {
    "bad_yaml": (
        "app: {url: http://h:1\ninputs: [\n",
        "{file}:2:7: this is not valid YAML: while parsing a flow mapping: expected ',' or '}', "
        "but got ':'",
    ),
    "top_is_a_list": ("- app\n", "{file}:1: expected a mapping of keys"),
    "unknown_top_key": (
        "app: a/b\ninputz: {}\n",
        "{file}:2:1: inputz: unknown key 'inputz' (did you mean 'inputs'?); expected one of "
        "name, app, inputs, run, output",
    ),
    "duplicate_key": (
        "app: a/b\nrun: {retries: 1}\nrun: {retries: 2}\n",
        "{file}:3:1: run: the key 'run' is given twice (first on line 2); keep one",
    ),
    "no_app": ("inputs: {rows: [{a: 1}]}\n", "{file}: app: the manifest says nothing about"),
    "bad_rate": (
        "app: a/b\nrun:\n  rate: 10 per second\n",
        "{file}:3:3: run.rate: expected a rate like 10/s, 600/min or 1/h, got '10 per second'",
    ),
    "bad_duration": (
        "app: a/b\nrun:\n  timeout: soon\n",
        "{file}:3:3: run.timeout: expected a duration like 90s, 10m, 1h30m or 250ms, got 'soon'",
    ),
    "concurrency_not_a_number": (
        "app: a/b\nrun:\n  concurrency: many\n",
        "{file}:3:3: run.concurrency: expected a whole number of at least 1, got 'many'",
    ),
    "zero_count": (
        "app:\n  replicas:\n    - duplicate: a/b\n      count: 0\n",
        "{file}:4:7: app.replicas[0].count: expected a whole number of at least 1, got 0",
    ),
    "bool_as_text": (
        "app: a/b\nrun:\n  share_session: yes\n",
        "{file}:3:3: run.share_session: expected true or false, got 'yes'",
    ),
    "queue_ahead_negative": (
        "app: a/b\nrun:\n  queue_ahead: -1\n",
        "{file}:3:3: run.queue_ahead: expected `auto` or a whole number of at least 0 (0 turns "
        "queueing ahead off), got -1",
    ),
    "hedge_as_text": (
        "app: a/b\nrun:\n  hedge: off\n",
        "{file}:3:3: run.hedge: expected true or false, got 'off'",
    ),
    "bad_space_id": (
        "app:\n  replicas:\n    - space: just-a-name\n",
        "{file}:3:7: app.replicas[0].space: expected a Space id like owner/name",
    ),
    "bad_url": (
        "app:\n  replicas:\n    - url: ftp://host\n",
        "{file}:3:7: app.replicas[0].url: expected a URL starting with http:// or https://",
    ),
    "two_kinds_in_one_replica": (
        "app:\n  replicas:\n    - url: http://h:1\n      space: a/b\n",
        "{file}:3:7: app.replicas[0]: expected exactly one of url:, space:, duplicate:, "
        "local: or ray: in each replica, found 'url' and 'space'",
    ),
    "unknown_replica_option": (
        "app:\n  replicas:\n    - duplicate: a/b\n      hardwear: t4-small\n",
        "{file}:4:7: app.replicas[0].hardwear: unknown key 'hardwear' (did you mean 'hardware'?)",
    ),
    "missing_local_script": (
        "app:\n  replicas:\n    - local: apps/nope.py\n",
        "{file}:3:7: app.replicas[0].local: expected an app script, but 'apps/nope.py' does "
        "not exist",
    ),
    "missing_csv": (
        "app: a/b\ninputs:\n  csv: data/missing.csv\n",
        "{file}:3:3: inputs.csv: expected a csv file, but 'data/missing.csv' does not exist",
    ),
    "glob_matches_nothing": (
        "app: a/b\ninputs:\n  files: clips/*.flac\n",
        "{file}:3:3: inputs.files: expected a glob that matches files, but 'clips/*.flac' "
        "matches none",
    ),
    "two_sources": (
        "app: a/b\ninputs:\n  rows: [{a: 1}]\n  jsonl: x.jsonl\n",
        "{file}:4:3: inputs.jsonl: give one source of rows, not both 'rows' and 'jsonl'",
    ),
    "row_not_a_mapping": (
        "app: a/b\ninputs:\n  rows:\n    - {text: ok}\n    - just text\n",
        "{file}:5:7: inputs.rows[1]: expected a mapping of parameter: value, got 'just text'",
    ),
    "matrix_not_a_list": (
        "app: a/b\ninputs:\n  matrix:\n    seed: 3\n",
        "{file}:4:5: inputs.matrix.seed: expected a non-empty list of values, got 3",
    ),
    "matrix_and_map_clash": (
        "app: a/b\ninputs:\n  map: {seed: 1}\n  matrix:\n    seed: [1, 2]\n",
        "{file}:5:5: inputs.matrix.seed: 'seed' is also set by inputs.map; keep one of them",
    ),
    "delimiter_without_csv": (
        "app: a/b\ninputs:\n  rows: [{a: 1}]\n  delimiter: ';'\n",
        "{file}:4:3: inputs.delimiter: delimiter applies to csv: inputs only",
    ),
    "bad_export_format": (
        "app: a/b\noutput:\n  export: [csv, xlsx]\n",
        "{file}:3:17: output.export[1]: expected one of csv, parquet, jsonl, got 'xlsx'",
    ),
    "unsafe_name": (
        "name: ../escape\napp: a/b\n",
        "{file}:1:1: name: expected a folder-safe name",
    ),
    "bad_variable_syntax": (
        "app: a/b\ninputs: {rows: [{text: '${1BAD}'}]}\n",
        "{file}:2:18: inputs.rows[0].text: '${1BAD}' is not a variable reference; expected "
        "${NAME} or ${NAME:-default}",
    ),
    "empty_file": ("", "{file}: the manifest is empty"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_manifest_message(tmp_path: Path, case: str) -> None:
    """Each mistake gives one line naming file:line:column, the key, and what is expected."""
    text, expected = MALFORMED[case]
    (tmp_path / "clips").mkdir()
    (tmp_path / "x.jsonl").write_text("{}\n")
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert str(info.value).startswith(expected.replace("{file}", str(path))), str(info.value)
    assert isinstance(info.value, RunnerError) and info.value.exit_status == ExitStatus.USAGE
    assert "Traceback" not in str(info.value)


def test_unset_variable_names_file_line_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, "app:\n  url: http://h:1\n  hf_token: ${HF_TOKEN_FOR_TEST}\n")
    with pytest.raises(UnsetVariable) as info:
        load_manifest(path, environ={})
    assert str(info.value) == (
        f"{path}:3:3: app.hf_token: the environment variable HF_TOKEN_FOR_TEST is not set; "
        "set it, or give a default with ${HF_TOKEN_FOR_TEST:-default}"
    )
    assert (info.value.line, info.value.key, info.value.variable) == (
        3, "app.hf_token", "HF_TOKEN_FOR_TEST",
    )  # fmt: skip


def test_value_from_environment_is_not_echoed_in_errors(tmp_path: Path) -> None:
    """A bad value that came from ${VAR} is quoted as its ${VAR} text, not its value."""
    path = write(tmp_path, "app: a/b\nrun:\n  timeout: ${SECRET_TIMEOUT}\n")
    with pytest.raises(ManifestError) as info:
        load_manifest(path, environ={"SECRET_TIMEOUT": "hunter2"})
    assert "hunter2" not in str(info.value)
    assert "'${SECRET_TIMEOUT}' (from the environment)" in str(info.value)


def test_missing_manifest_file(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as info:
        load_manifest(tmp_path / "nope.yaml")
    assert str(info.value) == (
        f"{tmp_path / 'nope.yaml'}: no such file; expected a manifest (.yaml) or a file of "
        "rows (.csv, .jsonl, .parquet)"
    )
