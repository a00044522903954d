"""spacerun's launcher for app scripts: `python _bootstrap.py SCRIPT [ARGS...]`.

Executed by path, by whatever interpreter runs the replica (spacerun's own, the virtual
environment of a Space, a cluster node's), so it imports nothing of spacerun: only the
standard library, and gradio once the script imports it. It reads two variables:

    SPACERUN_HOST, SPACERUN_PORT    where the app must listen

and runs SCRIPT as `__main__`, as `python SCRIPT ARGS...` would (same `sys.argv`,
`sys.path[0]` and `__file__`), with `gradio.Blocks.launch` patched (so also
`gr.Interface`, `gr.ChatInterface` and every other subclass that inherits it): whatever
the script passes, each launch binds to SPACERUN_HOST:SPACERUN_PORT, with `share=False`
and `inbrowser=False`, and one line on stderr says what was overridden. The patch is put
in place when the script imports `gradio.blocks`, so a script that never imports gradio
pays nothing.

When the script returns:

- it launched an app with `prevent_thread_lock=True`: wait on it (else the process would
  end and take the server with it);
- it launched nothing: launch the Blocks it built at module level (`demo`, else the only
  `gr.Blocks` among its globals), as `gradio app.py` does;
- it launched nothing and built nothing: exit with status 3 and a message saying so.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import inspect
import os
import runpy
import sys
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

#: Exit status when the script neither launched nor built a Gradio app.
NO_APP = 3
_PREFIX = "spacerun:"
#: The globals a module-level app is usually called, in order of preference.
_APP_NAMES = ("demo", "app", "iface", "interface", "block", "blocks")


class _State:
    """What the patched launch saw: the apps launched, and whether the last one returned
    at once (`prevent_thread_lock=True`) rather than blocking until the server stopped."""

    def __init__(self) -> None:
        self.launched: list[Any] = []
        self.returned_at_once = False


_state = _State()


def _say(message: str) -> None:
    print(f"{_PREFIX} {message}", file=sys.stderr, flush=True)


def _patch_launch(blocks_class: type, host: str, port: int) -> None:
    original = blocks_class.launch  # type: ignore[attr-defined]
    signature = inspect.signature(original)
    forced: dict[str, Any] = {
        "server_name": host,
        "server_port": port,
        "share": False,
        "inbrowser": False,
    }
    why = {
        "server_name": "spacerun's host",
        "server_port": "spacerun's port",
        "share": "a replica needs no public link",
        "inbrowser": "no browser for a replica",
    }

    @functools.wraps(original)
    def launch(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:
            return original(self, *args, **kwargs)  # let gradio say what is wrong
        for name, value in forced.items():
            if name not in signature.parameters:
                continue
            given = bound.arguments.get(name)
            if name in bound.arguments and given not in (None, False, value):
                _say(f"launch({name}={given!r}) overridden: {name}={value!r} ({why[name]})")
            bound.arguments[name] = value
        prevent = bool(bound.arguments.get("prevent_thread_lock", False))
        _state.launched.append(self)
        result = original(*bound.args, **bound.kwargs)
        _state.returned_at_once = prevent
        return result

    blocks_class.launch = launch  # type: ignore[attr-defined]


class _PatchGradioOnImport(importlib.abc.MetaPathFinder):
    """Patches `gradio.blocks.Blocks.launch` as soon as that module has been executed."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "gradio.blocks":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        execute = loader.exec_module
        host, port = self.host, self.port

        def exec_module(module: ModuleType) -> None:
            execute(module)
            _patch_launch(module.Blocks, host, port)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _module_level_app(namespace: dict[str, Any]) -> tuple[str, Any] | None:
    blocks_module = sys.modules.get("gradio.blocks")
    if blocks_module is None:
        return None
    blocks_class = blocks_module.Blocks
    found = [(name, v) for name, v in namespace.items() if isinstance(v, blocks_class)]
    for preferred in _APP_NAMES:
        for name, value in found:
            if name == preferred:
                return name, value
    # A Blocks made inside another (a tab's content, say) is not an app; the last one
    # defined at module level is usually the whole page.
    return found[-1] if found else None


def _keep_serving(app: Any) -> None:
    block = getattr(app, "block_thread", None)
    if callable(block):
        block()
        return
    while getattr(app, "is_running", True):  # pragma: no cover - gradio always has it
        time.sleep(0.5)


def main(argv: Sequence[str]) -> int:
    if len(argv) < 2:
        print("usage: python _bootstrap.py SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    script = os.path.abspath(argv[1])
    host = os.environ.get("SPACERUN_HOST", "127.0.0.1")
    port = int(os.environ["SPACERUN_PORT"])
    # As `python SCRIPT` does: its own folder first on the path, not this launcher's.
    sys.argv = [script, *argv[2:]]
    sys.path[0] = os.path.dirname(script)
    sys.meta_path.insert(0, _PatchGradioOnImport(host, port))
    namespace = runpy.run_path(script, run_name="__main__")
    if _state.launched:
        if _state.returned_at_once:
            _keep_serving(_state.launched[-1])
        return 0
    found = _module_level_app(namespace)
    if found is None:
        name = os.path.basename(script)
        _say(
            f"{name} ended without launching a Gradio app, and defines none at module level "
            f"(such as demo = gr.Blocks() or gr.Interface(...)); make it build or launch one"
        )
        return NO_APP
    name, app = found
    _say(f"{os.path.basename(script)} launched nothing: launching its module-level {name!r}")
    app.launch(prevent_thread_lock=True)
    _keep_serving(app)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
