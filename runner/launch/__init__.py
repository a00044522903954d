"""Manifest replicas -> live replicas: URLs, Space ids, duplicated Spaces, local copies."""

from ._local import LocalApp, LocalAppError, LocalApps, LocalAppSpec
from ._open import open_replicas

__all__ = ["LocalApp", "LocalAppError", "LocalAppSpec", "LocalApps", "open_replicas"]
