"""The README's runnable examples run, against the bundled app they name."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.apps import start_app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n## ", start + 1)
    return README[start:end]


def python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def test_files_example_runs(tmp_path: Path) -> None:
    """The 'Files, state, tokens and Spaces' example transcribes with the bundled app."""
    blocks = python_blocks(section("### Files, state, tokens and Spaces"))
    assert blocks
    code = (
        blocks[0] + "\nprint(client.predict(handle_file("
        "'sample_manifests/data/speech/hello_world.wav'), api_name='/transcribe'))\n"
    )
    script = str(ROOT / "sample_manifests" / "apps" / "transcribe.py")
    with start_app(script, ready_timeout=120) as app:
        code = code.replace("http://127.0.0.1:7860", app.url)
        code = code.replace(
            'download_files="downloads"', f"download_files={str(tmp_path / 'downloads')!r}"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
        )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "hello world"


@pytest.mark.parametrize("command", ["./scripts/demo", "./scripts/test"])
def test_readme_names_its_two_commands(command: str) -> None:
    """The README's promise: one command for the demo, one for the tests."""
    assert f"```bash\n{command}\n```" in README
    assert (ROOT / command).stat().st_mode & 0o111


def test_first_examples_run() -> None:
    """The 'first example' blocks (blocking and async) run against the test apps they name."""
    text = section("## A first example: the `jobs` client")
    blocks = python_blocks(text[: text.index("### Behaviour worth knowing")])
    assert len(blocks) == 2
    with start_app("calculator") as calc, start_app("generator") as gen:
        for code in blocks:
            code = code.replace("http://127.0.0.1:7860", calc.url)
            code = code.replace("http://127.0.0.1:7861", gen.url)
            out = subprocess.run(
                [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=90
            )
            assert out.returncode == 0, out.stderr
            assert out.stdout.split()[-3:] == ["0", "1", "2"]


def test_from_python_example_runs(tmp_path: Path) -> None:
    """The 'From Python' DataFrame example runs the bundled translator, 3 rows x 2
    languages, and prints one ok row per combination."""
    [code, _] = python_blocks(section("## From Python: `runner.map`"))
    code = code.replace('run_dir="runs/translate-map"', f"run_dir={str(tmp_path / 'run')!r}")
    code = code.replace("rate=", 'progress="quiet", rate=')
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 1 + 6 and all(line.rstrip().endswith("ok") for line in lines[1:])
    assert (tmp_path / "run" / "report.html").exists()
