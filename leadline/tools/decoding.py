"""Content-Encoding decoders that never produce more than they are asked for.

httpx decodes a compressed chunk all at once, so one 64 KiB chunk of a gzip bomb becomes ~64 MiB in
memory before any size check can run (and a brotli or zstd chunk far more). These decoders take an
output limit on every call and stop there, so a fetch's byte cap holds for the *decoded* body.
Brotli needs ``brotli>=1.2`` (``output_buffer_limit``); zstd needs ``backports.zstd`` on Python < 3.14.
"""

from __future__ import annotations

import importlib
import zlib
from typing import Any, Protocol

from leadline.errors import FetchError


class BoundedDecoder(Protocol):
    """A Content-Encoding decoder that never produces much more than the bytes still wanted."""

    def decode(self, data: bytes, limit: int) -> bytes:
        """Decode ``data``; return at most about ``limit`` bytes (more input is then not wanted)."""
        ...


class IdentityDecoder:
    """The decoder of an unencoded body: the bytes as they came."""

    def decode(self, data: bytes, limit: int) -> bytes:
        """``data`` unchanged."""
        return data


class ZlibDecoder:
    """gzip and deflate. ``deflate`` in the wild is zlib-wrapped or raw; try wrapped first (as httpx)."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._first = True
        self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16 if self._gzip else zlib.MAX_WBITS)

    def decode(self, data: bytes, limit: int) -> bytes:
        """Inflate gzip or deflate (zlib-wrapped or raw) into at most ``limit`` bytes, across gzip members."""
        try:
            out = self._obj.decompress(data, limit)
        except zlib.error:
            if self._gzip or not self._first:
                raise
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._obj.decompress(data, limit)
        self._first = False
        # A gzip body may hold several members; start a new one on what is left after the first ends.
        while self._gzip and self._obj.eof and self._obj.unused_data and len(out) < limit:
            rest = self._obj.unused_data
            self._obj = zlib.decompressobj(zlib.MAX_WBITS | 16)
            out += self._obj.decompress(rest, limit - len(out))
        return out


class BrotliDecoder:
    """Brotli, decoded with an output limit (brotli 1.2 and later)."""

    def __init__(self, module: Any) -> None:
        self._obj = module.Decompressor()

    def decode(self, data: bytes, limit: int) -> bytes:
        """Decode into at most about ``limit`` bytes."""
        out: bytes = self._obj.process(data, output_buffer_limit=max(limit, 1))
        while len(out) < limit and not self._obj.can_accept_more_data():
            more = self._obj.process(b"", output_buffer_limit=max(limit - len(out), 1))
            if not more:
                break
            out += more
        return out


class ZstdDecoder:
    """Zstandard, decoded with an output limit, across concatenated frames."""

    def __init__(self, module: Any) -> None:
        self._module = module
        self._obj = module.ZstdDecompressor()

    def decode(self, data: bytes, limit: int) -> bytes:
        """Decode into at most about ``limit`` bytes."""
        out: bytes = self._obj.decompress(data, max_length=limit)
        # Concatenated frames: continue with a fresh decompressor on the rest.
        while self._obj.eof and self._obj.unused_data and len(out) < limit:
            rest = self._obj.unused_data
            self._obj = self._module.ZstdDecompressor()
            out += self._obj.decompress(rest, max_length=limit - len(out))
        return out


def _brotli_module() -> Any | None:
    try:
        module = importlib.import_module("brotli")
    except ImportError:
        return None
    # brotli < 1.2 has no output limit: decoding with it would bring the bomb back, so do not offer br.
    return module if hasattr(module.Decompressor(), "can_accept_more_data") else None


def _zstd_module() -> Any | None:
    for name in ("compression.zstd", "backports.zstd"):
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return None


def supported_encodings() -> tuple[str, ...]:
    """What to put in ``Accept-Encoding``: only encodings we can decode with a bound."""
    encodings = ["gzip", "deflate"]
    if _brotli_module() is not None:
        encodings.append("br")
    if _zstd_module() is not None:
        encodings.append("zstd")
    return tuple(encodings)


def _decoder_for(encoding: str) -> BoundedDecoder:
    if encoding in ("", "identity"):
        return IdentityDecoder()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return ZlibDecoder(encoding)
    if encoding == "br" and (brotli := _brotli_module()) is not None:
        return BrotliDecoder(brotli)
    if encoding == "zstd" and (zstd := _zstd_module()) is not None:
        return ZstdDecoder(zstd)
    raise FetchError(f"unsupported Content-Encoding {encoding!r}", reason="encoding")


class BodyDecoder:
    """Decodes a body encoded in one or more layers (``Content-Encoding: gzip, br``), bounded throughout."""

    def __init__(self, content_encoding: str) -> None:
        layers = [part.strip().lower() for part in content_encoding.split(",") if part.strip()]
        # Encodings are listed in the order applied, so decoding runs in reverse.
        self._decoders = [_decoder_for(layer) for layer in reversed(layers)]

    def decode(self, data: bytes, limit: int) -> bytes:
        """Undo every Content-Encoding in turn, each bounded, so a nested bomb stops at the cap too."""
        try:
            for depth, decoder in enumerate(self._decoders):
                data = decoder.decode(data, limit)
                if len(data) >= limit and depth < len(self._decoders) - 1:
                    # An inner layer at the cap already: stop here rather than lose its unread rest.
                    raise FetchError("body over the byte cap while decoding", reason="too_large")
        except FetchError:
            raise
        except Exception as exc:  # zlib.error, brotli.error, ZstdError: all mean a corrupt body
            raise FetchError(f"cannot decode body: {exc}", reason="decoding") from exc
        return data


__all__ = ["BodyDecoder", "supported_encodings"]
