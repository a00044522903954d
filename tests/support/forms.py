"""The manifest tests' Gradio app (`tests/data/manifests/forms_app.py`), loaded by path."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from .servers import starting

DATA = Path(__file__).resolve().parent.parent / "data" / "manifests"


def forms_app() -> Any:
    """The forms_app module; `forms_app().serve()` runs it and yields its AppSchema."""
    starting("the forms app")
    spec = importlib.util.spec_from_file_location("forms_app", DATA / "forms_app.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
