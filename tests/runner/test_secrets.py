"""A secret used as an input (`${MY_API_KEY}` in a manifest) never reaches a run's files,
logs, exports, report, status or error messages in clear — even when the app echoes it
back in its output, its console or its error — while resume still finds the done rows;
and which variables are secret, as the README says."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from support.apps import APPS_DIR, RunningApp
from support.cli import spacerun

from runner.errors import ManifestError
from runner.manifest import Redactor, is_secret_name, load_manifest
from runner.run import RedactingFilter, RunOptions, run
from runner.scheduling import AllReplicasDown

pytestmark = pytest.mark.timeout(240)

#: With a number of its own: failure causes fold numbers to `N`, which must not leave the
#: secret's other characters behind (`sk-live-N-Zq93xK2mB7`).
SECRET = "sk-live-4096-Zq93xK2mB7"
ENV = {"MY_API_KEY": SECRET}
MASKED = "${MY_API_KEY}"


def keyed_manifest(folder: Path, run_dir: Path) -> Path:
    path = folder / "keyed.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: keyed
        app:
          replicas:
            - local: {APPS_DIR / "keyed.py"}
          endpoint: /predict
        inputs:
          rows: [{{q: hello}}, {{q: world}}, {{q: fail-please}}]
          map:
            text: "key=${{MY_API_KEY}} q={{q}}"
            api_key: ${{MY_API_KEY}}
        run: {{retries: 0}}
        output:
          dir: {run_dir}
          export: [csv, jsonl, parquet]
        """),
        encoding="utf-8",
    )
    return path


def assert_nowhere_in_clear(*paths: Path) -> None:
    """No file under `paths` holds the secret: raw bytes, and every Parquet cell (a
    compressed page could hide it from a byte search)."""
    files = [f for p in paths for f in ([p] if p.is_file() else sorted(p.rglob("*")))]
    checked = [f for f in files if f.is_file()]
    assert checked
    for file in checked:
        assert SECRET.encode() not in file.read_bytes(), file
        if file.suffix == ".parquet":
            assert SECRET not in pd.read_parquet(file).to_csv(), file


def test_a_secret_input_never_reaches_the_run_folder_in_clear(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    manifest = keyed_manifest(tmp_path, run_dir)
    result = spacerun("-v", "run", str(manifest), "--progress", "json", env=ENV, timeout=180)
    assert result.returncode == 1, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "inputs text, api_key carry secrets (MY_API_KEY)" in result.stderr
    assert f"bad key {MASKED}" in result.stderr  # the summary's failure line
    assert f"using key {MASKED}" in result.stderr  # the app's gr.Info, as the progress note

    records = {
        r["inputs"]["text"]: r
        for r in map(json.loads, (run_dir / "results.jsonl").read_text().splitlines())
    }
    assert sorted(records) == [f"key={MASKED} q={q}" for q in ("fail-please", "hello", "world")]
    hello = records[f"key={MASKED} q=hello"]
    assert hello["status"] == "ok" and hello["inputs"]["api_key"] == MASKED
    assert hello["outputs"] == {"Result": f"key={MASKED} q=hello (signed with {MASKED})"}
    failed = records[f"key={MASKED} q=fail-please"]
    assert failed["status"] == "error" and failed["error_message"].endswith(f"bad key {MASKED}")
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["failures_by_cause"][0]["example"]["message"].endswith(f"bad key {MASKED}")
    # The app printed the key and gradio its error: its log is kept, masked.
    app_log = (run_dir / "logs" / "local-1.log").read_text()
    assert f"keyed: called with key {MASKED}" in app_log
    assert f"key={MASKED} q=hello (signed" in (run_dir / "export.csv").read_text()
    assert f"bad key {MASKED}" in (run_dir / "report.html").read_text()
    assert "MY_API_KEY" in (run_dir / "manifest.yaml").read_text()
    assert_nowhere_in_clear(run_dir)

    # What users run over a finished folder, and share.
    elsewhere = tmp_path / "shared.parquet"
    for command in (
        ("status", str(run_dir)),
        ("status", str(run_dir), "--json"),
        ("export", str(run_dir), "--format", "parquet", "--out", str(elsewhere)),
        ("report", str(run_dir)),
    ):
        shown = spacerun(*command, env=ENV)
        assert shown.returncode == 0, shown.stderr
        assert SECRET not in shown.stdout + shown.stderr, command
    assert_nowhere_in_clear(run_dir, elsewhere)

    # Keys come from the real key: the resume finds both ok rows done.
    again = spacerun("run", str(manifest), "--no-retry-failed", env=ENV, timeout=180)
    assert again.returncode == 1, again.stderr
    assert SECRET not in again.stdout + again.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["skipped_already_ok"] == 2 and summary["this_run"]["ok"] == 0
    assert_nowhere_in_clear(run_dir)


def test_validation_names_secret_inputs_and_masks_a_refused_secret(
    calculator_app: RunningApp, tmp_path: Path
) -> None:
    """A secret the app's API refuses (text where a number goes) is quoted masked, by
    `validate` and by a `run` that stops at validation."""
    manifest = tmp_path / "calc.yaml"
    manifest.write_text(
        textwrap.dedent(f"""\
        app: {{url: "{calculator_app.url}", endpoint: /predict}}
        inputs:
          map: {{num1: "${{MY_API_KEY}}", operation: add, num2: 1}}
        output: {{dir: {tmp_path / "run"}}}
        """),
        encoding="utf-8",
    )
    checked = spacerun("validate", str(manifest), env=ENV)
    assert checked.returncode == 1, checked.stderr
    assert "input num1 carries a secret (MY_API_KEY): recorded masked" in checked.stdout
    assert MASKED in checked.stdout and SECRET not in checked.stdout + checked.stderr
    ran = spacerun("run", str(manifest), env=ENV)
    assert ran.returncode == 1 and "nothing was submitted" in ran.stderr
    assert MASKED in ran.stderr and SECRET not in ran.stdout + ran.stderr
    assert_nowhere_in_clear(tmp_path / "run")


# --- which variables are secret ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("OPENAI_API_KEY", True),
        ("DEEPL_APIKEY", True),
        ("HF_TOKEN", True),
        ("client_secret", True),
        ("DB_PASSWORD", True),
        ("PASSWORD", True),
        ("BASIC_AUTH", True),
        ("AUTHORIZATION_HEADER", True),
        ("MONKEY", False),
        ("KEYBOARD_LAYOUT", False),
        ("TOKENIZER", False),
        ("MODEL_NAME", False),
        ("GITHUB_AUTH_HEADER", True),
        ("BOOK_AUTHOR", False),
    ],
)
def test_secret_by_name(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def write(folder: Path, text: str) -> Path:
    path = folder / "m.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_the_manifest_lists_more_secrets_and_exceptions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        app: {url: "http://127.0.0.1:9", endpoint: /predict}
        secrets: [CRED]
        not_secret: [SORT_KEY]
        inputs:
          rows: [{q: a, api_key: "${OPENAI_API_KEY}", who: "${CRED}"}]
          map: {sort: "${SORT_KEY}", lang: "${LANG_CODE:-en}", text: "${MODEL_NAME} {q}"}
        """,
    )
    environ = {
        "OPENAI_API_KEY": "sk-open-1234",
        "CRED": "alice:hunter22",
        "SORT_KEY": "name",
        "MODEL_NAME": "gpt-9",
    }
    manifest = load_manifest(path, environ=environ)
    assert manifest.redactor.names == ["CRED", "OPENAI_API_KEY"]
    assert manifest.secret_inputs() == {"api_key": ["OPENAI_API_KEY"], "who": ["CRED"]}
    text = "sk-open-1234 alice:hunter22 name gpt-9 en"
    assert manifest.redactor.mask(text) == "${OPENAI_API_KEY} ${CRED} name gpt-9 en"
    # The run folder's manifest.yaml keeps the lists, so it reads back the same way.
    dumped = manifest.to_dict()
    assert dumped["secrets"] == ["CRED"] and dumped["not_secret"] == ["SORT_KEY"]
    assert "sk-open-1234" not in json.dumps(dumped)


def test_a_token_variable_is_secret_whatever_its_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        app: {url: "http://127.0.0.1:9", hf_token: "${MY_HUB_LOGIN}"}
        """,
    )
    manifest = load_manifest(path, environ={"MY_HUB_LOGIN": "hf_abcdefgh"})
    assert manifest.redactor.names == ["MY_HUB_LOGIN"]


def test_a_name_in_both_lists_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        app: {url: "http://127.0.0.1:9"}
        secrets: [CRED]
        not_secret: [CRED]
        """,
    )
    with pytest.raises(ManifestError, match="CRED is listed in secrets: too"):
        load_manifest(path, environ={})


def test_short_secrets_are_masked_only_as_whole_values() -> None:
    """Masking "42" inside every text would wreck outputs and logs; a whole value is safe."""
    redactor = Redactor({"PIN": "42", "LONG_KEY": "sk-42-abcdef"})
    assert redactor.mask("42") == "${PIN}"
    assert redactor.mask("row 42 of sk-42-abcdef") == "row 42 of ${LONG_KEY}"
    assert redactor.short == ["PIN"]


def test_log_lines_and_tracebacks_are_masked(tmp_path: Path) -> None:
    """What any logger (runner, jobs, httpx) writes through a handler with the filter."""
    redactor = Redactor(ENV)
    log_file = tmp_path / "run.log"
    handler = logging.FileHandler(log_file)
    handler.addFilter(RedactingFilter(redactor))
    logger = logging.getLogger("runner.test_secrets")
    logger.addHandler(handler)
    try:
        logger.warning("calling with %s", SECRET)
        try:
            raise ValueError(f"bad key {SECRET}")
        except ValueError:
            logger.exception("the app refused")
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = log_file.read_text()
    assert f"calling with {MASKED}" in text and f"ValueError: bad key {MASKED}" in text
    assert SECRET not in text


def test_an_unreachable_replica_whose_address_holds_a_secret(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """`url: ...?token=${ENDPOINT_TOKEN}` that never answers: the messages while it waits,
    the log lines of its probes, the error the run ends with and summary.json name it
    masked."""
    caplog.set_level(logging.DEBUG)
    run_dir = tmp_path / "run"
    path = write(
        tmp_path,
        f"""\
        app: {{url: "http://127.0.0.1:9/?token=${{ENDPOINT_TOKEN}}", endpoint: /predict}}
        inputs: {{map: {{text: hello}}}}
        output: {{dir: {run_dir}}}
        """,
    )
    options = RunOptions(environ={"ENDPOINT_TOKEN": SECRET}, all_down_deadline=1, progress="plain")
    with pytest.raises(AllReplicasDown) as raised:
        run(path, options)
    printed = capsys.readouterr()
    assert "127.0.0.1:9/?token=${ENDPOINT_TOKEN}" in str(raised.value) + printed.err
    assert SECRET not in str(raised.value) + printed.out + printed.err
    assert "probe of http://127.0.0.1:9/?token=${ENDPOINT_TOKEN} failed" in caplog.text
    assert SECRET not in caplog.text
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"] and SECRET not in json.dumps(summary)
    assert_nowhere_in_clear(run_dir)


def test_a_local_copy_that_quotes_the_secret_as_it_fails_to_start(tmp_path: Path) -> None:
    """The secret passed in a local copy's `env:` and printed by its crash: the log tail
    that `validate` and `run` show, and the log kept in the run folder, are masked."""
    run_dir = tmp_path / "run"
    path = write(
        tmp_path,
        f"""\
        app:
          replicas:
            - local: {APPS_DIR / "keyed.py"}
              env: {{KEYED_CRASH_WITH: "${{MY_API_KEY}}"}}
          endpoint: /predict
        inputs: {{map: {{text: hi, api_key: "${{MY_API_KEY}}"}}}}
        output: {{dir: {run_dir}}}
        """,
    )
    for command in ("validate", "run"):
        result = spacerun(command, str(path), env=ENV)
        assert result.returncode == 2, result.stderr
        assert f"RuntimeError: keyed: cannot start with key {MASKED}" in result.stderr
        assert SECRET not in result.stdout + result.stderr
    assert f"cannot start with key {MASKED}" in (run_dir / "logs" / "local-1.log").read_text()
    assert_nowhere_in_clear(run_dir)
