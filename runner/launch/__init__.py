"""Manifest replicas -> live replicas: URLs, Space ids, duplicated Spaces, local copies."""

from ._fleet import Fleet, ReplicaCost
from ._local import LocalApp, LocalAppError, LocalApps, LocalAppSpec
from ._open import open_replicas

__all__ = [
    "Fleet",
    "LocalApp",
    "LocalAppError",
    "LocalAppSpec",
    "LocalApps",
    "ReplicaCost",
    "open_replicas",
]
