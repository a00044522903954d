#!/usr/bin/env bash
# Create a virtualenv with an older gradio release, to run the test apps against it.
#
#   scripts/older_gradio.sh 5.50.0
#   SPACERUN_TEST_APP_PYTHON="$(scripts/older_gradio.sh 5.50.0 | tail -n 1)" pytest tests/...
#
# The venv lives in .venv-gradio-VERSION at the repository root and is reused when it
# already has that gradio. Only the last line of stdout is the interpreter path;
# progress goes to stderr. PYTHON picks the base interpreter (default: python3).
set -euo pipefail

if [[ $# -ne 1 || -z "$1" ]]; then
    echo "usage: $0 GRADIO_VERSION   (e.g. 5.50.0 or 4.44.1)" >&2
    exit 2
fi
version="$1"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv-gradio-$version"
py="$venv/bin/python"

installed="$("$py" -c 'import gradio; print(gradio.__version__)' 2>/dev/null || true)"
if [[ "$installed" == "$version" ]]; then
    echo "gradio $version already in $venv" >&2
    echo "$py"
    exit 0
fi

base="${PYTHON:-python3}"
echo "creating $venv with $("$base" --version 2>&1)" >&2
"$base" -m venv "$venv"
"$py" -m pip install --quiet --upgrade pip >&2

pins=()
if [[ "$version" == 4.* ]]; then
    # gradio 4.x breaks with newer releases of these: a removed HfFolder import in
    # huggingface_hub, pydantic schema changes, and a HEAD check in newer starlette.
    pins=("huggingface_hub==0.25.2" "pydantic==2.10.6" "fastapi==0.112.2")
fi
echo "installing gradio==$version ${pins[*]:-}" >&2
"$py" -m pip install --quiet "gradio==$version" "${pins[@]}" >&2

"$py" -c 'import gradio; print("gradio", gradio.__version__, "ready", flush=True)' >&2
echo "$py"
