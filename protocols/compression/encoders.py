"""Streaming encoders for gzip, brotli and zstd: `compress(chunk)` returns output the client can decode at once,
`flush()` ends the stream.

Every non-empty chunk is followed by a sync flush, so a streamed body (server-sent events, a long download)
reaches the client as it arrives instead of sitting in the compressor's window; it costs a few bytes per chunk.
brotli and zstd are optional imports: a coding whose library is missing is simply never offered.
"""
from __future__ import annotations

import zlib
from typing import Protocol

try:
    import brotli
except ImportError:  # pragma: no cover - brotli is in requirements.txt; kept optional for slim installs
    brotli = None
try:
    import zstandard
except ImportError:  # pragma: no cover - zstandard is optional
    zstandard = None  # type: ignore[assignment]

AVAILABLE: frozenset[str] = frozenset(
    {"gzip"} | ({"br"} if brotli is not None else set()) | ({"zstd"} if zstandard is not None else set())
)


class Encoder(Protocol):
    coding: bytes

    def compress(self, chunk: bytes) -> bytes: ...

    def flush(self) -> bytes: ...


class GzipEncoder:
    """gzip (RFC 1952) through zlib, wbits 31."""

    coding = b"gzip"
    __slots__ = ("_zlib",)

    def __init__(self, level: int = 6) -> None:
        self._zlib = zlib.compressobj(level, zlib.DEFLATED, 31)

    def compress(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        return self._zlib.compress(chunk) + self._zlib.flush(zlib.Z_SYNC_FLUSH)

    def flush(self) -> bytes:
        return self._zlib.flush(zlib.Z_FINISH)


class BrotliEncoder:
    """brotli (RFC 7932); quality 4 by default, nginx's and Caddy's choice for on-the-fly compression."""

    coding = b"br"
    __slots__ = ("_brotli",)

    def __init__(self, quality: int = 4) -> None:
        assert brotli is not None
        self._brotli = brotli.Compressor(quality=quality)

    def compress(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        data: bytes = self._brotli.process(chunk) + self._brotli.flush()  # brotli ships no type hints
        return data

    def flush(self) -> bytes:
        data: bytes = self._brotli.finish()
        return data


class ZstdEncoder:
    """zstd (RFC 8878), level 3 by default."""

    coding = b"zstd"
    __slots__ = ("_zstd", "_block")

    def __init__(self, level: int = 3) -> None:
        assert zstandard is not None
        self._zstd = zstandard.ZstdCompressor(level=level).compressobj()
        self._block = zstandard.COMPRESSOBJ_FLUSH_BLOCK

    def compress(self, chunk: bytes) -> bytes:
        if not chunk:
            return b""
        return self._zstd.compress(chunk) + self._zstd.flush(self._block)

    def flush(self) -> bytes:
        return self._zstd.flush()
