"""Bounded decoders: compression bombs stop at the cap, honest bodies decode exactly."""

from __future__ import annotations

import gzip
import zlib

import pytest

from leadline.errors import FetchError
from leadline.tools.decoding import BodyDecoder, supported_encodings

PLAIN = b"<p>" + b"PostgreSQL vacuum reclaims storage. " * 5000 + b"</p>"


def _compress(encoding: str, data: bytes) -> bytes:
    if encoding == "gzip":
        return gzip.compress(data)
    if encoding == "deflate":
        return zlib.compress(data)
    if encoding == "br":
        brotli = pytest.importorskip("brotli")
        return bytes(brotli.compress(data))
    zstd = pytest.importorskip("backports.zstd")
    return bytes(zstd.compress(data))


def _decode_in_chunks(decoder: BodyDecoder, body: bytes, limit: int, chunk: int = 65536) -> tuple[bytes, int]:
    out = bytearray()
    largest = 0
    for start in range(0, len(body), chunk):
        piece = decoder.decode(body[start : start + chunk], limit - len(out) + 1)
        largest = max(largest, len(piece))
        out += piece
        if len(out) > limit:
            break
    return bytes(out), largest


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_honest_bodies_decode_exactly(encoding: str) -> None:
    body = _compress(encoding, PLAIN)
    out, _ = _decode_in_chunks(BodyDecoder(encoding), body, limit=10 * len(PLAIN), chunk=1000)
    assert out == PLAIN


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "zstd"])
def test_bombs_never_produce_more_than_asked(encoding: str) -> None:
    bomb = _compress(encoding, b"\0" * (16 * 1024 * 1024))
    limit = 1_000_000
    out, largest = _decode_in_chunks(BodyDecoder(encoding), bomb, limit)
    assert len(out) > limit  # the caller sees it is over the cap...
    assert largest <= limit + 1 + 64 * 1024  # ...and no single call blew past what was asked


def test_raw_deflate_and_multi_member_gzip() -> None:
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    raw_body = raw.compress(PLAIN) + raw.flush()
    assert BodyDecoder("deflate").decode(raw_body, 10**7) == PLAIN
    two_members = gzip.compress(b"first ") + gzip.compress(b"second")
    assert BodyDecoder("gzip").decode(two_members, 10**7) == b"first second"


def test_stacked_encodings_decode_in_reverse_order() -> None:
    body = gzip.compress(zlib.compress(PLAIN))  # deflate applied first, then gzip
    assert BodyDecoder("deflate, gzip").decode(body, 10**7) == PLAIN


def test_corrupt_and_unknown_encodings_are_fetch_errors() -> None:
    with pytest.raises(FetchError) as corrupt:
        BodyDecoder("gzip").decode(b"this is not gzip at all", 1000)
    assert corrupt.value.reason == "decoding"
    with pytest.raises(FetchError) as unknown:
        BodyDecoder("compress")
    assert unknown.value.reason == "encoding"


def test_only_bounded_encodings_are_advertised() -> None:
    encodings = supported_encodings()
    assert encodings[:2] == ("gzip", "deflate")
    assert set(encodings) <= {"gzip", "deflate", "br", "zstd"}
