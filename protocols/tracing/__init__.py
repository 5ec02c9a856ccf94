"""Tracing for the proxy: W3C Trace Context propagation (`context`) and OTLP/HTTP JSON span export (`otlp`).

`from protocols.tracing import ...` keeps reaching the propagation functions and the `SpanSink` hook; the
exporter lives in `protocols.tracing.otlp` and its environment reading in `protocols.tracing.config`.
"""
from __future__ import annotations

from protocols.tracing.context import (
    SAMPLED,
    Decide,
    SpanSink,
    new_span_id,
    new_trace_id,
    parse,
    traceparent_for,
    traceparent_from,
)

__all__ = ["SAMPLED", "Decide", "SpanSink", "new_span_id", "new_trace_id", "parse", "traceparent_for",
           "traceparent_from"]
