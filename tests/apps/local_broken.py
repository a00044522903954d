"""Not an app: fails at import, as a script with a bug does. For `runner.launch._local` tests."""

from __future__ import annotations

raise RuntimeError("local_broken: this script fails at import")
