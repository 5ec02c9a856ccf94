"""Response compression (gzip, brotli, zstd when `zstandard` is installed), negotiated per request and streamed.

Wiring (the response side of ProxyApp, through `protocols.shaping`)::

    policy = CompressionPolicy.from_config(spec.policies.get("compression"))   # at table build; None: off
    encoder, headers = policy.start(method, status, headers, accept_encoding)  # per response head
    # per body chunk:  send(encoder.compress(chunk)) ... and at the end: send(encoder.flush())

The `compression` block of a route (null: no compression; `{}` or `{"enabled": true}`: the defaults)::

    enabled          true
    algorithms       ["br", "zstd", "gzip"]   server preference when the client's q-values tie
    content_types    text/*, application/json, application/*+json, application/javascript, application/xml,
                     application/*+xml, image/svg+xml   ("type/*" and "type/*+suffix" patterns allowed)
    min_bytes        1024    a body announced (Content-Length) below this is sent as is
    gzip_level 6 (1-9), brotli_quality 4 (0-11), zstd_level 3 (1-19)

Never compresses what the backend already encoded, HEAD answers, 204/206/304, `Cache-Control: no-transform`;
adds `Vary: Accept-Encoding` to every compressible response; a client without Accept-Encoding gets identity.
"""
from __future__ import annotations

from protocols.compression.config import DEFAULT_POLICY, KEYS, CompressionPolicy, compile_policy
from protocols.compression.encoders import AVAILABLE, BrotliEncoder, Encoder, GzipEncoder, ZstdEncoder
from protocols.compression.negotiate import choose, parse_accept_encoding

__all__ = [
    "AVAILABLE", "DEFAULT_POLICY", "KEYS", "BrotliEncoder", "CompressionPolicy", "Encoder", "GzipEncoder",
    "ZstdEncoder", "choose", "compile_policy", "parse_accept_encoding",
]
