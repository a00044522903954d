"""Test support: real Gradio apps started as subprocesses (see `apps.py`).

pytest puts `tests/` on sys.path (rootdir conftest, no `tests/__init__.py`), so
tests import this as `from support import start_app`.
"""

from .apps import APPS_DIR, AppStartError, RunningApp, app_python, start_app, start_apps

__all__ = ["APPS_DIR", "AppStartError", "RunningApp", "app_python", "start_app", "start_apps"]
