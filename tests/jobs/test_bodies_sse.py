"""Bounded decoding, sans-IO: compressed bodies come out in small pieces whatever their
ratio, and the event-stream decoder refuses a line or event over its limit."""

from __future__ import annotations

import zlib

import pytest

from jobs import LimitExceeded, ProtocolError
from jobs._http.bodies import Inflater
from jobs._protocol.sse import SSEDecoder

PIECE = 1 << 16


def bomb(inflated: int, wbits: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b" " * (1 << 20)
    return b"".join(compressor.compress(block) for _ in range(inflated >> 20)) + (
        compressor.flush()
    )


@pytest.mark.parametrize(
    ("encoding", "wbits"), [("gzip", zlib.MAX_WBITS | 16), ("deflate", zlib.MAX_WBITS)]
)
def test_a_compressed_body_comes_out_in_small_pieces(encoding: str, wbits: int) -> None:
    body = bomb(64 << 20, wbits)
    inflater = Inflater(encoding)
    sizes = [len(p) for p in inflater.feed(body)] + [len(p) for p in inflater.finish()]
    assert max(sizes) <= PIECE
    assert sum(sizes) == 64 << 20


def test_raw_deflate_is_read_too() -> None:
    body = bomb(1 << 20, -zlib.MAX_WBITS)
    assert sum(len(p) for p in Inflater("deflate").feed(body)) == 1 << 20


def test_a_cut_or_corrupt_compressed_body_is_a_protocol_error() -> None:
    body = bomb(4 << 20, zlib.MAX_WBITS | 16)
    inflater = Inflater("gzip")
    list(inflater.feed(body[: len(body) // 2]))
    with pytest.raises(ProtocolError, match="ended early"):
        list(inflater.finish())
    with pytest.raises(ProtocolError, match="corrupt"):
        list(Inflater("gzip").feed(b"not gzip at all"))


def test_an_encoding_not_asked_for_is_refused() -> None:
    with pytest.raises(ProtocolError, match="'zstd'"):
        Inflater("zstd", url="http://x.test/config")


def test_brotli_is_bounded_too() -> None:
    brotli = pytest.importorskip("brotli")
    body = brotli.compress(b" " * (64 << 20))
    assert len(body) < 1000  # a tiny body, a huge output: exactly the danger
    try:
        inflater = Inflater("br")
    except ProtocolError:
        pytest.skip("this brotli has no output limit; such bodies are refused")
    sizes = [len(p) for p in inflater.feed(body)] + [len(p) for p in inflater.finish()]
    assert max(sizes) <= PIECE and sum(sizes) == 64 << 20


def test_sse_lines_split_anywhere_decode_the_same() -> None:
    stream = b'data: {"a": 1}\r\n\r\ndata: two\rdata: lines\r\r: comment\ndata: x\n\n'
    whole = [e.data for e in SSEDecoder().feed(stream)]
    assert whole == ['{"a": 1}', "two\nlines", "x"]
    for cut in range(1, len(stream)):
        decoder = SSEDecoder()
        parts = decoder.feed(stream[:cut]) + decoder.feed(stream[cut:])
        assert [e.data for e in parts] == whole, cut


@pytest.mark.parametrize(
    "chunks",
    [
        [b"data: one\n\ndata: two\n\n"],
        [b"data:tight\n\n", b"data: one\n\n"],
        [b"event: named\ndata: x\n\n", b"data: y\n\n"],
        [b": comment\n\ndata: x\n\n"],
        [b"data: a\ndata: b\n\n", b"data: \xc3\xa9\n\n"],
        [b"data: half", b" way\n\n", b"data: next\n\n"],
        [b"data: x\r\n", b"\r\ndata: y\n\n"],
        [b"\n\n", b"data: \n\n"],
    ],
)
def test_chunks_of_whole_events_decode_as_line_by_line(chunks: list[bytes]) -> None:
    """A chunk of whole one-line `data: ` events takes a short path: the events must be
    those of the same bytes fed one at a time (the line-by-line path)."""
    decoder = SSEDecoder()
    events = [e for chunk in chunks for e in decoder.feed(chunk)]
    single = SSEDecoder()
    stream = b"".join(chunks)
    expected = [e for i in range(len(stream)) for e in single.feed(stream[i : i + 1])]
    assert events == expected and events


def test_a_line_over_the_limit_raises_before_it_ends() -> None:
    decoder = SSEDecoder(max_bytes=1000, url="http://x.test/queue/data")
    decoder.feed(b"data: " + b"x" * 900)
    with pytest.raises(LimitExceeded) as caught:
        decoder.feed(b"x" * 200)
    assert caught.value.limit == "max_message_bytes" and caught.value.value == 1000
    assert "http://x.test/queue/data" in str(caught.value)


def test_an_event_of_many_lines_counts_them_all() -> None:
    decoder = SSEDecoder(max_bytes=1000)
    with pytest.raises(LimitExceeded):
        decoder.feed(b"data: " + b"y" * 100 + b"\n" * 1)
        for _ in range(20):
            decoder.feed(b"data: " + b"y" * 100 + b"\n")
