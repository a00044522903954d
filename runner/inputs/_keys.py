"""The deterministic key of a submission, and the cached file hashing behind it.

How the key is made, and what it guarantees, is in `runner.inputs._expand`'s docstring.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from ._coerce import is_url
from ._media import MediaFile

__all__ = ["KEY_LENGTH", "FileHasher", "default_hasher", "key_of", "submission_key"]

KEY_LENGTH = 20
_HASH_CHUNK = 1 << 20


class FileHasher:
    """SHA-256 of file contents, cached by (path, size, mtime_ns): each file is read once."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._cache: dict[tuple[str, int, int], str] = {}
        self._max_entries = max_entries

    def digest(self, path: str) -> str:
        info = os.stat(path)
        key = (path, info.st_size, info.st_mtime_ns)
        found = self._cache.get(key)
        if found is not None:
            return found
        sha = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                sha.update(chunk)
        digest = sha.hexdigest()
        if len(self._cache) >= self._max_entries:
            self._cache.clear()
        self._cache[key] = digest
        return digest


default_hasher = FileHasher()  # shared, so a file is read once per process


def submission_key(
    api_name: str,
    inputs: Mapping[str, Any],
    *,
    file_params: Iterable[str] = (),
    hasher: FileHasher | None = None,
) -> str:
    """The deterministic key of `inputs` for the endpoint `api_name` (how it is made:
    `runner.inputs._expand`)."""
    return key_of(api_name, inputs, frozenset(file_params), hasher or default_hasher)


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
_PLAIN = (str, int, bool, type(None))


def key_of(
    api_name: str, inputs: Mapping[str, Any], files: frozenset[str], hasher: FileHasher
) -> str:
    canon = {}
    for name, value in inputs.items():
        if name in files:
            canon[name] = _canon_file(value, hasher)
        elif type(value) in _PLAIN:
            canon[name] = value
        else:
            canon[name] = _canon(value)
    text = _ENCODER.encode([api_name, canon])
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def _canon(value: Any) -> Any:
    # 2 and 2.0 are the same number to the app, so they must give the same key.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _canon(v) for k, v in value.items()}
    return value


def _canon_file(value: Any, hasher: FileHasher) -> Any:
    if isinstance(value, list):
        return [_canon_file(v, hasher) for v in value]
    if isinstance(value, MediaFile):  # its content's hash, known without the file
        return {"sha256": value.sha256}
    if isinstance(value, str):
        return {"url": value} if is_url(value) else {"sha256": hasher.digest(value)}
    return value
