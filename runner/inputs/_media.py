"""Audio, Image and Video cells of a dataset -> files the app's file parameters can take.

`datasets` stores such a cell as a struct `{"bytes": ..., "path": ...}` (Parquet and Arrow
alike). Each distinct content is written once into the run folder's `media/` folder as
`<sha256>.<ext>` (the same name for the same bytes, whatever row or run it came from), so
a resume writes nothing again, the upload cache (keyed by content) uploads it once, and a
submission's key, which hashes a file's content, does not depend on where it was read.

A cell read is a `MediaFile`: the path it will have, holding its bytes. It is written
when its row becomes a submission to send (`Expander`), not when the row is read, so a
first run's validation pass, which reads every row, puts nothing on disk: a large audio
dataset is not all in `media/` before the first job is sent.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["MEDIA_KINDS", "MediaCache", "MediaFile", "is_media_cell", "media_columns"]

#: The `datasets` feature types whose cells become files, with the extension used when
#: neither the cell's `path` nor its bytes tell one.
MEDIA_KINDS = {"Audio": ".wav", "Image": ".png", "Video": ".mp4"}

# Leading bytes of common formats, for cells whose `path` has no extension.
_MAGIC = (
    (b"RIFF", ".wav"),
    (b"fLaC", ".flac"),
    (b"OggS", ".ogg"),
    (b"ID3", ".mp3"),
    (b"\x89PNG", ".png"),
    (b"\xff\xd8\xff", ".jpg"),
    (b"GIF8", ".gif"),
)


def media_columns(stream: Any) -> dict[str, str]:
    """A dataset's top-level Audio/Image/Video columns, with their feature type."""
    features = getattr(stream, "features", None) or {}
    return {
        name: type(feature).__name__
        for name, feature in features.items()
        if type(feature).__name__ in MEDIA_KINDS
    }


def is_media_cell(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"bytes", "path"}


class MediaFile(str):
    """A media cell's path in `media/`, not necessarily written yet, with its bytes and
    their SHA-256 (what a key hashes, so a key needs no file). A `str`, so templates and
    checks see the path; `write()` makes it a file and returns it as a plain `str`."""

    data: bytes
    sha256: str
    _cache: MediaCache

    def __new__(cls, path: str, data: bytes, sha256: str, cache: MediaCache) -> MediaFile:
        self = super().__new__(cls, path)
        self.data, self.sha256, self._cache = data, sha256, cache
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (MediaFile, (str(self), self.data, self.sha256, self._cache))

    def write(self) -> str:
        """The file, written if it is not there yet (once per content)."""
        path = str(self)
        self._cache.write(Path(path), self.data)
        return path


class MediaCache:
    """Writes media cells under `folder` (created on first use), one file per content."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._made = False

    def file_for(self, cell: Mapping[str, Any], kind: str) -> str | None:
        """The local file for one cell: its `MediaFile` (written when sent), or the file
        its `path` names when it holds no bytes (a dataset saved with external files);
        None if empty."""
        data, path = cell.get("bytes"), cell.get("path")
        if data is None:
            return path if isinstance(path, str) and path else None
        digest = hashlib.sha256(data).hexdigest()
        target = self.folder / (digest + _extension(path, data, kind))
        return MediaFile(str(target), data, digest, self)

    def write(self, target: Path, data: bytes) -> None:
        if target.exists():
            return
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = True
        # Written under a temporary name and renamed: a reader (an upload running while a
        # later row is read) never sees half a file under its final name. The name is the
        # target's plus this process and thread (tempfile.mkstemp's random names cost a
        # third of the time of writing a small file).
        tmp = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _extension(path: Any, data: bytes, kind: str) -> str:
    if isinstance(path, str):
        suffix = Path(path).suffix.lower()
        if 1 < len(suffix) <= 6 and suffix[1:].isalnum():
            return suffix
    for magic, extension in _MAGIC:
        if data.startswith(magic):
            return extension
    if data[4:8] == b"ftyp":
        return ".mp4"
    return MEDIA_KINDS.get(kind, ".bin")
