"""Reading answer bodies under a byte budget, compressed or not.

httpx inflates a whole network chunk at once (a 64 KiB gzip chunk can become 64 MiB, a
brotli one gigabytes), so bodies are read raw and inflated here, at most `_PIECE` bytes
at a time: what a server sends can never take more memory than the budget allows.
`Inflater` is sans-IO; `read_capped` and `iter_decoded` pump an httpx response into it.
"""

from __future__ import annotations

import importlib
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from ..errors import JobsError, ProtocolError

__all__ = ["ACCEPT_ENCODING", "Inflater", "iter_decoded", "read_capped"]

#: What we ask servers for: encodings whose output we can bound.
ACCEPT_ENCODING = "gzip, deflate"
_PIECE = 1 << 16


class Inflater:
    """Decodes one `Content-Encoding`; `feed` yields the output in pieces of at most 64 KiB."""

    def __init__(self, encoding: str | None, *, url: str | None = None) -> None:
        names = [e.strip().lower() for e in (encoding or "").split(",") if e.strip()]
        names = [n for n in names if n != "identity"]
        self._steps: list[Callable[[bytes], Iterator[bytes]]] = []
        for name in reversed(names):  # the last applied is the first undone
            self._steps.append(_decoder(name, url))

    def feed(self, data: bytes) -> Iterator[bytes]:
        pieces: Iterator[bytes] = iter((data,))
        for step in self._steps:
            pieces = _chain(step, pieces)
        for piece in pieces:
            for start in range(0, len(piece), _PIECE):
                yield piece[start : start + _PIECE]

    def finish(self) -> Iterator[bytes]:
        """The end of the body: a compressed stream must be complete here."""
        if self._steps:
            yield from self.feed(b"")


def _chain(step: Callable[[bytes], Iterator[bytes]], pieces: Iterator[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from step(piece)


def _decoder(name: str, url: str | None) -> Callable[[bytes], Iterator[bytes]]:
    if name in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if name == "deflate":
        # "deflate" is zlib-wrapped per the RFC, raw deflate by common mistake: take both.
        return _Zlib(zlib.MAX_WBITS | 32, raw_fallback=True)
    if name == "br":
        return _brotli_steps(url)
    raise ProtocolError(
        f"the server at {url} sent a body encoded as {name!r}, which this client did not ask "
        f"for (it accepts {ACCEPT_ENCODING}) and cannot read",
        url=url,
    )


class _Zlib:
    """gzip or deflate, inflated at most `_PIECE` bytes per call."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._d = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback
        self._produced = False

    def __call__(self, data: bytes) -> Iterator[bytes]:
        try:
            if not data:  # the end of the body
                if self._produced and not self._d.eof:
                    raise zlib.error("the compressed body ended early")
                return
            pending = data
            while pending:
                out = self._d.decompress(pending, _PIECE)
                pending = self._d.unconsumed_tail
                if out:
                    self._produced = True
                    yield out
        except zlib.error as exc:
            if self._raw_fallback and not self._produced:
                self._raw_fallback = False
                self._d = zlib.decompressobj(-zlib.MAX_WBITS)
                yield from self(data)
                return
            raise ProtocolError(f"the server sent a corrupt compressed body: {exc}") from exc


def _brotli_steps(url: str | None) -> Callable[[bytes], Iterator[bytes]]:
    try:
        brotli: Any = importlib.import_module("brotli")
        decompressor = brotli.Decompressor()
        decompressor.process(b"", output_buffer_limit=_PIECE)
    except (ImportError, TypeError, AttributeError):
        # Without a bounded brotli (1.2+) a tiny body may inflate to gigabytes in one call.
        raise ProtocolError(
            f"the server at {url} sent a brotli body, which this client did not ask for "
            f"(it accepts {ACCEPT_ENCODING}) and cannot read under its memory limits",
            url=url,
        ) from None

    def step(data: bytes) -> Iterator[bytes]:
        try:
            if not data:  # the end of the body: drain what is left, then it must be whole
                while not decompressor.is_finished():
                    out = decompressor.process(b"", output_buffer_limit=_PIECE)
                    if not out:
                        raise ProtocolError("the brotli body ended early")
                    yield out
                return
            out = decompressor.process(data, output_buffer_limit=_PIECE)
            while True:
                if out:
                    yield out
                if decompressor.can_accept_more_data():
                    return
                out = decompressor.process(b"", output_buffer_limit=_PIECE)
        except brotli.error as exc:
            raise ProtocolError(f"the server sent a corrupt brotli body: {exc}") from exc

    return step


async def iter_decoded(response: httpx.Response) -> AsyncIterator[bytes]:
    """The response's body, decoded, in pieces of at most 64 KiB."""
    encoding = response.headers.get("content-encoding")
    if not encoding:  # nothing to inflate (an event stream, most JSON): no Inflater
        async for raw in response.aiter_raw():
            if 0 < len(raw) <= _PIECE:
                yield raw
            else:
                for start in range(0, len(raw), _PIECE):
                    yield raw[start : start + _PIECE]
        return
    inflater = Inflater(encoding, url=str(response.request.url))
    async for raw in response.aiter_raw():
        for piece in inflater.feed(raw):
            yield piece
    for piece in inflater.finish():
        yield piece


async def read_capped(
    response: httpx.Response, limit: int, *, on_over: Callable[[], JobsError] | None
) -> bytes:
    """Read the decoded body, at most `limit` bytes. Over it: raise `on_over()`, or with
    `on_over=None` return the first `limit` bytes (for error bodies, read for a message)."""
    body = bytearray()
    async for piece in iter_decoded(response):
        if len(body) + len(piece) > limit:
            if on_over is None:
                body += piece[: limit - len(body)]
                break
            raise on_over()
        body += piece
    return bytes(body)
