"""Files in and out: `handle_file` markers, uploads (once per content), and downloads of
output files into a chosen folder under names that cannot escape it."""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, unquote, urlparse

import anyio

from ._http.app import AppHttp
from ._http.bodies import iter_decoded
from ._protocol.limits import human_bytes, over_limit
from ._protocol.schema import Parameter
from .errors import FileError, ProtocolError

__all__ = ["Downloader", "Uploader", "file", "handle_file", "inline_files", "is_file_data"]

_META = {"_type": "gradio.FileData"}
_CHUNK = 1 << 20
_NAME_BYTES = 200


def handle_file(path_or_url: str | os.PathLike[str]) -> dict[str, Any]:
    """Mark a local path or a URL as a file input (it is uploaded, or fetched by the app).

    Raises `FileError` at once if a local file does not exist.
    """
    text = os.fspath(path_or_url)
    if _is_url(text):
        name = Path(unquote(urlparse(text).path)).name or "file"
        return {"path": text, "url": text, "orig_name": name, "meta": dict(_META)}
    if not os.path.isfile(text):
        raise FileError(
            f"file not found: {text!r} (paths are relative to {os.getcwd()!r})", path=text
        )
    return {"path": text, "orig_name": os.path.basename(text), "meta": dict(_META)}


#: gradio_client's older name for `handle_file`.
file = handle_file


def is_file_data(value: Any) -> bool:
    """True for a FileData dict (a file marker, an uploaded file, or a file output)."""
    if not isinstance(value, dict) or not isinstance(value.get("path"), str):
        return False
    meta = value.get("meta")
    return (isinstance(meta, dict) and meta.get("_type") == "gradio.FileData") or "url" in value


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def wrap_files(param: Parameter, value: Any) -> Any:
    """Accept a plain path or URL string where the endpoint expects a file."""
    if param.file_kind == "single" and isinstance(value, (str, os.PathLike)):
        return handle_file(value)
    if param.file_kind == "list" and isinstance(value, (list, tuple)):
        return [handle_file(v) if isinstance(v, (str, os.PathLike)) else v for v in value]
    return value


async def inline_files(parameters: tuple[Parameter, ...], values: dict[str, Any]) -> dict[str, Any]:
    """`values` with each local file of an `inline` parameter (a gradio 3.x Image) as a
    base64 data URL, read off the event loop; a URL stays a marker (the 3.x session
    fetches it: `_wsfiles`)."""
    out = dict(values)
    for param in parameters:
        value = out.get(param.name)
        if param.inline and isinstance(value, dict) and is_file_data(value):
            path = value["path"]
            if not _is_url(path):
                out[param.name] = await anyio.to_thread.run_sync(_data_url, path)
    return out


def _data_url(path: str) -> str:
    mime = mimetypes.guess_type(path)[0] or "application/octet-stream"
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise FileError(f"cannot read {path!r}: {exc.strerror or exc}", path=path) from exc
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


class Uploader:
    """Uploads local file markers found in a payload; each content goes up once."""

    def __init__(self, app_http: AppHttp, max_file_size: int | None) -> None:
        self._app_http = app_http
        self._max = max_file_size
        self._by_digest: dict[str, str] = {}
        self._digest_by_stat: dict[tuple[str, int, int], str] = {}
        self._inflight: dict[str, anyio.Event] = {}

    def check(self, value: Any) -> None:
        """Raise `FileError` for a missing or oversized local file, before anything is sent."""
        for marker in _local_markers(value):
            path = marker["path"]
            try:
                size = os.stat(path).st_size
            except OSError:
                raise FileError(f"file not found: {path!r}", path=path) from None
            if self._max is not None and size > self._max:
                raise FileError(
                    f"file {path!r} is {_human(size)}, over the app's limit of "
                    f"{_human(self._max)} (max_file_size): it exceeds the maximum file size "
                    "the app accepts; use a smaller file",
                    path=path,
                    size=size,
                    limit=self._max,
                )

    async def upload_all(self, value: Any) -> Any:
        """Return `value` with every local file marker replaced by its uploaded FileData."""
        if not _local_markers(value):
            return value
        return await _map_async(value, self._upload_marker)

    async def _upload_marker(self, marker: dict[str, Any]) -> dict[str, Any]:
        path = marker["path"]
        try:
            digest = await anyio.to_thread.run_sync(self._digest, path)
        except OSError as exc:  # gone or unreadable since the check before sending
            raise FileError(f"cannot read {path!r}: {exc.strerror or exc}", path=path) from exc
        while digest not in self._by_digest:
            event = self._inflight.get(digest)
            if event is not None:
                await event.wait()
                continue
            event = self._inflight[digest] = anyio.Event()
            try:
                name = marker.get("orig_name") or os.path.basename(path)
                with open(path, "rb") as handle:  # noqa: ASYNC230 - streamed by httpx
                    reply = await self._app_http.post_files(
                        "upload", [("files", (name, handle, "application/octet-stream"))]
                    )
                if not (isinstance(reply, list) and reply and isinstance(reply[0], str)):
                    raise ProtocolError(f"the upload route answered {reply!r} for {path!r}")
                self._by_digest[digest] = reply[0]
            finally:
                del self._inflight[digest]
                event.set()
        return {
            "path": self._by_digest[digest],
            "orig_name": marker.get("orig_name") or os.path.basename(path),
            "meta": dict(_META),
        }

    def _digest(self, path: str) -> str:
        st = os.stat(path)
        key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
        digest = self._digest_by_stat.get(key)
        if digest is None:
            digest = sha256_file(path)
            self._digest_by_stat[key] = digest
        return digest


class Downloader:
    """Downloads every output file into `folder` and returns local paths in their place.

    A file is written to a hidden `.part-*` file and renamed into place only once it is
    complete: at most `max_bytes` (the client's `max_download_bytes`), and exactly the
    FileData's `size` when the server declares one. Anything else raises and leaves no
    file behind."""

    def __init__(
        self, app_http: AppHttp, folder: Path | Callable[[], Path], *, max_bytes: int | None
    ) -> None:
        self._app_http = app_http
        self._folder = folder
        self._max = max_bytes

    async def localize(self, value: Any) -> Any:
        if not _contains_file(value):
            return value
        folder = self._folder() if callable(self._folder) else self._folder
        return await _map_async(value, lambda fd: self._download(fd, folder), match=is_file_data)

    async def _download(self, data: dict[str, Any], folder: Path) -> str:
        url = self._source_url(data)
        declared = _declared_size(data)
        self._check_declared(declared, url)
        name = safe_name(str(data.get("orig_name") or os.path.basename(data["path"])))
        try:
            await anyio.Path(folder).mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        except OSError as exc:
            raise _save_failed(exc, folder) from exc
        try:
            with os.fdopen(fd, "wb") as out:
                if url.startswith("data:"):
                    digest = self._write_data_url(url, out)
                else:
                    digest = await self._fetch(url, out, declared)
            target_dir = folder / digest[:16]
            target_dir.mkdir(exist_ok=True)
            target = target_dir / name
            os.replace(tmp, target)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise _save_failed(exc, folder) from exc
            raise
        return str(target)

    def _write_data_url(self, url: str, out: BinaryIO) -> str:
        """A file sent inline (a gradio 3.x Image): already read, within the message
        limit; decoded here under the download limit."""
        _, _, encoded = url.partition(";base64,")
        if self._max is not None and len(encoded) * 3 // 4 > self._max:
            raise over_limit(
                "the output file (inline)", limit="max_download_bytes", value=self._max, url=None
            )
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ProtocolError(f"the app sent a malformed base64 file: {url[:80]!r}") from exc
        out.write(data)
        return hashlib.sha256(data).hexdigest()

    def _source_url(self, data: dict[str, Any]) -> str:
        path = str(data["path"])
        if path.startswith("data:"):
            return path
        if data.get("is_stream") and data.get("url"):
            return str(data["url"])
        if _is_url(path):
            return path
        return self._app_http.url("file=" + quote(path, safe="/"))

    def _check_declared(self, declared: int | None, url: str) -> None:
        if declared is not None and self._max is not None and declared > self._max:
            raise over_limit(
                f"the output file ({human_bytes(declared)}, as its FileData says)",
                limit="max_download_bytes",
                value=self._max,
                url=url,
            )

    async def _fetch(self, url: str, out: BinaryIO, declared: int | None) -> str:
        """Stream `url` into `out` under the limits; returns the content's sha256."""
        digest = hashlib.sha256()
        written = 0
        async with self._app_http.stream("GET", url) as response:
            async for chunk in iter_decoded(response):
                written += len(chunk)
                if declared is not None and written > declared:
                    raise _size_mismatch(url, declared, "more than")
                if self._max is not None and written > self._max:
                    raise over_limit(
                        "the output file", limit="max_download_bytes", value=self._max, url=url
                    )
                digest.update(chunk)
                out.write(chunk)
        if declared is not None and written != declared:
            raise _size_mismatch(url, declared, f"only {written:,} bytes of")
        return digest.hexdigest()


def _save_failed(exc: OSError, folder: Path) -> FileError:
    # The disk, not the server: full, read-only, or a file where the folder should be.
    return FileError(
        f"could not save an output file into {folder}: {exc.strerror or exc}; free some "
        "space or choose another download folder",
        path=str(exc.filename or folder),
    )


def _declared_size(data: dict[str, Any]) -> int | None:
    """The FileData's `size`, when it is one a file can have (streams have none)."""
    size = data.get("size")
    if data.get("is_stream") or isinstance(size, bool) or not isinstance(size, int):
        return None
    return size if size >= 0 else None


def _size_mismatch(url: str, declared: int, sent: str) -> ProtocolError:
    return ProtocolError(
        f"the server sent {sent} the {declared:,} bytes the output file's FileData declares "
        f"({url}); the partial file was removed. The app's file changed or the server is "
        "misbehaving: run the job again, and report it to the app's owner if it persists.",
        url=url,
    )


def safe_name(name: str) -> str:
    """A file name from a server, made safe: no directories, no `..`, no control or odd
    characters, not hidden, not empty, at most 200 bytes of UTF-8 (file systems allow 255)."""
    name = unicodedata.normalize("NFKC", name).replace("\\", "/").split("/")[-1]
    name = re.sub(r"[^\w.\- ()+,=@]", "_", name).strip(" .")
    if not name or set(name) <= {"_", "."}:
        name = "file"
    stem, dot, ext = name.rpartition(".")
    if not dot or len(ext.encode()) > 16:
        stem, dot, ext = name, "", ""
    budget = _NAME_BYTES - len((dot + ext).encode())
    if len(stem.encode()) > budget:
        stem = stem.encode()[:budget].decode("utf-8", errors="ignore").rstrip(" .") or "file"
    return stem + dot + ext


def sha256_file(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _local_markers(value: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if is_file_data(item) and "url" not in item and not _is_url(item["path"]):
                found.append(item)
            else:
                stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


def _contains_file(value: Any) -> bool:
    if isinstance(value, dict):
        return is_file_data(value) or any(_contains_file(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_contains_file(v) for v in value)
    return False


async def _map_async(
    value: Any, fn: Callable[[dict[str, Any]], Any], match: Callable[[Any], bool] | None = None
) -> Any:
    """Rebuild `value` with each matching dict replaced by `await fn(dict)`."""
    is_match = match or (lambda v: is_file_data(v) and "url" not in v and not _is_url(v["path"]))
    if isinstance(value, dict):
        if is_match(value):
            return await fn(value)
        return {k: await _map_async(v, fn, match) for k, v in value.items()}
    if isinstance(value, list):
        return [await _map_async(v, fn, match) for v in value]
    if isinstance(value, tuple):
        return tuple([await _map_async(v, fn, match) for v in value])
    return value


def _human(size: int) -> str:
    return f"{size:,} bytes ({size / 1e6:.1f} MB)" if size >= 1e6 else f"{size:,} bytes"
