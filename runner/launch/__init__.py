"""Manifest replicas -> live replicas: URLs, Space ids, duplicated Spaces, local copies.

`app_command` is the recipe for starting an app script on a chosen host and port (under
the bootstrap, which imports nothing of spacerun), and `listening_elsewhere` / `last_line`
read a copy's log: launchers elsewhere (cluster nodes) reuse them.
"""

from ._command import BOOTSTRAP, AppCommand, app_command, bootstrap_source
from ._elastic import PARKED, ElasticGroup
from ._fleet import Fleet, ReplicaCost
from ._local import LocalApp, LocalApps
from ._open import open_replicas
from ._ready import last_line, listening_elsewhere
from ._spec import DEFAULT_READY_TIMEOUT, LocalAppError, LocalAppSpec

__all__ = [
    "BOOTSTRAP",
    "DEFAULT_READY_TIMEOUT",
    "PARKED",
    "AppCommand",
    "ElasticGroup",
    "Fleet",
    "LocalApp",
    "LocalAppError",
    "LocalAppSpec",
    "LocalApps",
    "ReplicaCost",
    "app_command",
    "bootstrap_source",
    "last_line",
    "listening_elsewhere",
    "open_replicas",
]
