"""URL file inputs for gradio 3.x apps, fetched here and sent inline.

A 3.x app cannot fetch a URL given as a file input (it copies `{name, is_file: true}`
from its own disk), and takes images only as base64 data URLs. So a URL input is
downloaded by the client (under `Limits.max_download_bytes`) and sent as the app's
base64 form: `{name, data: "data:...;base64,...", is_file: false}` for a file, the bare
data URL for an image. gradio_client 1.x did the same.
"""

from __future__ import annotations

import base64
import mimetypes
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from ._http.app import AppHttp
from ._http.bodies import iter_decoded
from ._protocol.limits import over_limit

__all__ = ["fetch_url_inputs"]


async def fetch_url_inputs(
    app_http: AppHttp, data: list[Any], inline_positions: frozenset[int]
) -> list[Any]:
    """`data` (a job's positional inputs) with each URL file marker replaced by what a
    3.x app takes; positions in `inline_positions` are images."""
    out = []
    for position, value in enumerate(data):
        out.append(await _fetched(app_http, value, inline=position in inline_positions))
    return out


async def _fetched(app_http: AppHttp, value: Any, *, inline: bool) -> Any:
    if isinstance(value, list):
        return [await _fetched(app_http, v, inline=inline) for v in value]
    if not (isinstance(value, dict) and _is_url_marker(value)):
        return value
    url = str(value["path"])
    name = str(value.get("orig_name") or PurePosixPath(unquote(urlparse(url).path)).name)
    content = await _download(app_http, url)
    mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    data_url = f"data:{mime};base64,{base64.b64encode(content).decode()}"
    if inline:
        return data_url
    return {"name": name or "file", "data": data_url, "is_file": False, "orig_name": name}


def _is_url_marker(value: dict[str, Any]) -> bool:
    path = value.get("path")
    meta = value.get("meta")
    return (
        isinstance(path, str)
        and path.startswith(("http://", "https://"))
        and isinstance(meta, dict)
        and meta.get("_type") == "gradio.FileData"
    )


async def _download(app_http: AppHttp, url: str) -> bytes:
    cap = app_http.limits.max_download_bytes
    pieces: list[bytes] = []
    size = 0
    async with app_http.stream("GET", url) as response:
        async for chunk in iter_decoded(response):
            size += len(chunk)
            if cap is not None and size > cap:
                raise over_limit(
                    "the input file at the URL", limit="max_download_bytes", value=cap, url=url
                )
            pieces.append(chunk)
    return b"".join(pieces)
