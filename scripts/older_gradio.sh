#!/usr/bin/env bash
# Make (once) a virtualenv with an older gradio release, to run the test apps against it.
#
#   scripts/older_gradio.sh 5.50.0
#   SPACERUN_TEST_APP_PYTHON="$(scripts/older_gradio.sh 5.50.0 | tail -n 1)" pytest tests/...
#
# The venv is the one the tests use: built from the pinned dependency set
# tests/old_gradio/VERSION.txt by tests/support/old_gradio.py, cached in .old-gradio/ at
# the repository root and reused while the set is unchanged. Only the last line of stdout
# is the interpreter path; progress goes to stderr. PYTHON picks the interpreter that
# builds it (default: the project's .venv/bin/python).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 GRADIO_VERSION   (e.g. 5.50.0 or 4.16.0)" >&2
    exit 2
fi
version="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [[ ! -f "$root/tests/old_gradio/$version.txt" ]]; then
    known="$(cd "$root/tests/old_gradio" && ls [0-9]*.txt | sed 's/\.txt$//' | tr '\n' ' ')"
    echo "no pinned dependency set for gradio $version; known: $known" >&2
    echo "(add tests/old_gradio/$version.txt: see tests/old_gradio/README.md)" >&2
    exit 2
fi
base="${PYTHON:-$root/.venv/bin/python}"
PYTHONPATH="$root/tests" "$base" -c \
    'import sys; from support.old_gradio import venv_python; print(venv_python(sys.argv[1]))' \
    "$version"
