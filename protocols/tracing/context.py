"""W3C Trace Context (`traceparent`) for the proxy: continue the client's trace, or start one, per request.

Pure and I/O-free. The gateway is one hop of the trace: the upstream request carries the same trace id with a
new parent id (the gateway's span), so the backend's spans hang under the gateway's. `tracestate` needs no
handling: it is forwarded unchanged with the other end-to-end headers.
"""
from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable
from typing import Protocol

_FIELDS = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_TRACE = b"0" * 32
_ZERO_SPAN = b"0" * 16
_random = random.Random()  # ids need to be unique, not secret (W3C Trace Context 6.1)
SAMPLED = b"01"
NOT_SAMPLED = b"00"
# A sampler: (trace id as 32 hex digits, the client's sampled flag or None for a new trace) -> sampled.
Decide = Callable[[bytes, bool | None], bool]


def new_trace_id() -> bytes:
    while True:
        value = b"%032x" % _random.getrandbits(128)
        if value != _ZERO_TRACE:
            return value


def new_span_id() -> bytes:
    while True:
        value = b"%016x" % _random.getrandbits(64)
        if value != _ZERO_SPAN:
            return value


def parse(value: bytes) -> tuple[bytes, bytes, bytes] | None:
    """(trace id, parent id, flags) of a valid traceparent value, else None.

    Version 00 must be exactly 55 characters; a later version may carry more after a dash (read its first four
    fields, as the spec asks); version ff, upper case, and all-zero ids are invalid.
    """
    value = value.strip()
    match = _FIELDS.match(value)
    if match is None or (len(value) > 55 and (value[:2] == b"00" or value[55:56] != b"-")):
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == b"ff" or trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    return trace_id, parent_id, flags


def traceparent_from(value: bytes | None, decide: Decide | None = None) -> tuple[bytes, str]:
    """The traceparent to send upstream and the trace id (for the access log), from the client's value (or None).

    A valid value keeps its trace id with a new span id; anything else starts a new trace. The sampled flag is
    `decide(trace id, the client's sampled flag or None on a new trace)` when the gateway samples (OTLP export
    on), else the client's flag, or sampled on a new trace: backends then follow the gateway's decision.
    """
    parsed = parse(value) if value else None
    if parsed is None:
        trace_id, parent_sampled = new_trace_id(), None
    else:
        trace_id, _, flags = parsed
        parent_sampled = int(flags, 16) & 0x01 == 1  # version 00 defines only the sampled bit
    if decide is not None:
        sampled = decide(trace_id, parent_sampled)
    else:
        sampled = parent_sampled is not False
    return b"00-" + trace_id + b"-" + new_span_id() + b"-" + (SAMPLED if sampled else NOT_SAMPLED), trace_id.decode()


def traceparent_for(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes, str]:
    """Same as `traceparent_from`, finding the client's `traceparent` among ASGI headers (lower-case names).

    More than one traceparent field makes the header invalid (W3C Trace Context 3.2): a new trace starts.
    """
    found: bytes | None = None
    for name, value in headers:
        if name == b"traceparent":
            if found is not None:
                return traceparent_from(None)
            found = value
    return traceparent_from(found)


class SpanSink(Protocol):
    """Where ProxyApp reports each proxied request as a span (an OTLP exporter); called once per request that
    reached a route, after the answer, on the event loop: it must not block. `decide` is its sampler, asked
    when the traceparent sent upstream is made (see traceparent_from)."""

    def decide(self, trace_id: bytes, parent_sampled: bool | None) -> bool: ...

    def finish(self, method: str, path: str, route: str | None, status: int, start_unix_s: float,
               duration_s: float, traceparent_sent: bytes, client_traceparent: bytes | None,
               backend: str | None, error: str | None, request_id: bytes) -> None: ...
