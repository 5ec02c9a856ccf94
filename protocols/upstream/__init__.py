"""Rusta's own pooled HTTP/1.1 client for talking to backends (asyncio + httptools, streaming both ways)."""
from __future__ import annotations

from protocols.upstream.client import DEFAULT_IDLE_TIMEOUT, UpstreamClient, UpstreamResponse
from protocols.upstream.connection import HOP_BY_HOP, READ_BUFFER_HIGH
from protocols.upstream.pool import Pool, authority

__all__ = [
    "DEFAULT_IDLE_TIMEOUT", "HOP_BY_HOP", "READ_BUFFER_HIGH", "Pool", "UpstreamClient", "UpstreamResponse",
    "authority",
]
