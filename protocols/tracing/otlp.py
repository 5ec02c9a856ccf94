"""OTLP/HTTP JSON span export: the `SpanSink` ProxyApp reports each proxied request to.

The sampler (`decide`, from OTEL_TRACES_SAMPLER) is asked when the proxy makes the traceparent it sends upstream,
so backends follow the gateway's decision; `finish()` exports the spans whose traceparent says sampled. It runs
on the event loop for every request, so it only checks that flag and appends a tuple to a bounded queue (a full
queue drops the span and counts it). A daemon thread started with the first span turns the queue into OTLP/JSON
batches every `schedule_delay_s` (sooner when a batch is full) and POSTs them with a sync httpx client: 429,
502, 503 and 504 and network errors are retried twice with backoff (honouring `Retry-After`), and lost spans
are logged at most once a minute. `shutdown()` flushes what is queued.

The span is the gateway's hop: trace id and span id are the ones sent upstream in `traceparent`, the parent is
the client's span when it sent a valid `traceparent` of the same trace. Ids are hex strings, times decimal
strings of nanoseconds, as OTLP/JSON encodes them.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from protocols.tracing.config import OtlpConfig
from protocols.tracing.context import Decide, parse

log = logging.getLogger(__name__)

SPAN_KIND_SERVER = 2
STATUS_ERROR = 2
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
RETRIES = 2
MAX_RETRY_WAIT_S = 10.0
REPORT_EVERY_S = 60.0  # at most one warning about lost spans per this many seconds

# What finish() queues: the arguments of one call, encoded later on the export thread.
Finished = tuple[str, str, str | None, int, float, float, bytes, bytes | None, str | None, str | None, bytes]
def _sampled(sent: bytes) -> bool:
    """The sampled flag of the traceparent sent upstream: the sampler's decision (traceparent_from)."""
    return int(sent[53:55], 16) & 0x01 == 1


def make_sampler(name: str, ratio: float = 1.0) -> Decide:
    """Decides from (trace id, the client's sampled flag or None for a new trace) whether a trace is sampled;
    `name` is an OTEL_TRACES_SAMPLER value. The decision goes upstream in the traceparent's flag, and a span is
    exported when it is set. The ratio samplers keep a trace when the low 64 bits of its id fall under the
    ratio, so every service sampling by ratio keeps the same traces."""
    bound = round(ratio * (1 << 64))

    def by_ratio(trace_id: bytes) -> bool:
        return int(trace_id[16:32], 16) < bound

    samplers: dict[str, Decide] = {
        "always_on": lambda trace_id, parent: True,
        "always_off": lambda trace_id, parent: False,
        "traceidratio": lambda trace_id, parent: by_ratio(trace_id),
        "parentbased_always_on": lambda trace_id, parent: True if parent is None else parent,
        "parentbased_always_off": lambda trace_id, parent: False if parent is None else parent,
        "parentbased_traceidratio": lambda trace_id, parent: by_ratio(trace_id) if parent is None else parent,
    }
    return samplers[name]


class OtlpExporter:
    """Batches spans of proxied requests and POSTs them as OTLP/JSON; see the module docstring.

    `exported`, `dropped` (queue full) and `failed` (the collector refused them or could not be reached) count
    spans. The transport, clock and sleep are attributes so that tests need no real waits beyond loopback.
    """

    def __init__(self, config: OtlpConfig, *, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
                 retry_backoff_s: float = 0.5) -> None:
        self.config = config
        self.transport = transport
        self.clock = clock
        self.sleep = sleep
        self.retry_backoff_s = retry_backoff_s
        self.exported = 0
        self.dropped = 0
        self.failed = 0
        self.decide = make_sampler(config.sampler, config.ratio)  # SpanSink.decide
        self._max_queue = config.max_queue_size
        self._batch_size = config.max_export_batch_size
        self._queue: deque[Finished] = deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._resource = [_attribute(key, value) for key, value in config.resource]
        self._headers = {"Content-Type": "application/json", "User-Agent": "rusta", **dict(config.headers)}
        self._reported_at = float("-inf")
        self._reported = (0, 0)  # (dropped, failed) as of the last warning
        self._last_problem = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> OtlpExporter | None:
        """The exporter the OTEL_* variables describe, None when they leave export off (no endpoint, disabled,
        `none`, `always_off`, gRPC). Raises OtlpConfigError, naming the variable, on a value it cannot use."""
        config = OtlpConfig.from_env(environ)
        if config is None or config.sampler == "always_off":
            return None
        log.info("exporting spans to %s (OTLP/HTTP JSON, service %s, sampler %s)", config.endpoint,
                 config.resource[0][1], config.sampler)
        return cls(config)

    def finish(self, method: str, path: str, route: str | None, status: int, start_unix_s: float,
               duration_s: float, traceparent_sent: bytes, client_traceparent: bytes | None,
               backend: str | None, error: str | None, request_id: bytes) -> None:
        """Queue the span of one proxied request (SpanSink); never blocks, never raises on a full queue."""
        if self._stopping.is_set() or not _sampled(traceparent_sent):
            return
        queue = self._queue
        if len(queue) >= self._max_queue:
            self.dropped += 1
            return
        queue.append((method, path, route, status, start_unix_s, duration_s, traceparent_sent, client_traceparent,
                      backend, error, request_id))
        if self._thread is None:
            self._start()
        if len(queue) >= self._batch_size and not self._wake.is_set():
            self._wake.set()

    def shutdown(self, timeout: float = 5.0) -> None:
        """Export what is queued (within `timeout` seconds) and stop the thread; later spans are ignored."""
        self._stopping.set()
        self._wake.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("span export did not finish within %.1f s; %d span(s) not sent", timeout,
                            len(self._queue))
        self._reported_at = float("-inf")
        self._report()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="rusta-otlp-export", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        with httpx.Client(timeout=self.config.timeout_s, transport=self.transport) as client:
            while True:
                if not self._stopping.is_set() and len(self._queue) < self._batch_size:
                    self._wake.wait(max(self.config.schedule_delay_s, 0.01))  # a delay of 0 must not spin
                    self._wake.clear()
                self.export_queued(client)
                self._report()
                if self._stopping.is_set() and not self._queue:
                    return

    def export_queued(self, client: httpx.Client) -> None:
        """Send everything queued so far, in batches of at most `max_export_batch_size` spans."""
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(self._batch_size, len(queue)))]
            try:
                body = self.encode(batch)
            except Exception:  # the last resort: a span that cannot be encoded must not stop the export thread
                log.exception("could not encode %d span(s) for export", len(batch))
                self._last_problem = "encoding error"
                self.failed += len(batch)
                continue
            self._send(client, body, len(batch))

    def encode(self, batch: list[Finished]) -> bytes:
        """The OTLP/JSON ExportTraceServiceRequest body for these spans."""
        document = {"resourceSpans": [{
            "resource": {"attributes": self._resource},
            "scopeSpans": [{"scope": {"name": "rusta"}, "spans": [span_json(*finished) for finished in batch]}],
        }]}
        return json.dumps(document, separators=(",", ":")).encode()

    def _send(self, client: httpx.Client, body: bytes, count: int) -> None:
        for attempt in range(RETRIES + 1):
            retry_after: float | None = None
            try:
                response = client.post(self.config.endpoint, content=body, headers=self._headers)
            except httpx.HTTPError as exc:  # refused, reset, timed out: transient, worth a retry
                self._last_problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                if response.is_success:
                    self.exported += count
                    return
                self._last_problem = f"HTTP {response.status_code}"
                if response.status_code not in RETRYABLE_STATUSES:
                    break
                retry_after = _retry_after(response.headers.get("retry-after"))
            if attempt < RETRIES:
                wait = self.retry_backoff_s * 2 ** attempt if retry_after is None else retry_after
                self.sleep(min(wait, MAX_RETRY_WAIT_S))
        self.failed += count

    def _report(self) -> None:
        """One warning about spans lost since the last one, at most every REPORT_EVERY_S seconds."""
        dropped, failed = self.dropped - self._reported[0], self.failed - self._reported[1]
        now = self.clock()
        if not (dropped or failed) or now - self._reported_at < REPORT_EVERY_S:
            return
        self._reported_at, self._reported = now, (self.dropped, self.failed)
        if failed:
            log.warning("span export to %s failed (%s): %d span(s) lost", self.config.endpoint, self._last_problem,
                        failed)
        if dropped:
            log.warning("span export queue full (OTEL_BSP_MAX_QUEUE_SIZE=%d): %d span(s) dropped", self._max_queue,
                        dropped)


def span_json(method: str, path: str, route: str | None, status: int, start_unix_s: float, duration_s: float,
              traceparent_sent: bytes, client_traceparent: bytes | None, backend: str | None, error: str | None,
              request_id: bytes) -> dict[str, Any]:
    """One OTLP/JSON Span of kind SERVER for a proxied request (the arguments of SpanSink.finish)."""
    trace_id = traceparent_sent[3:35].decode("ascii")
    start_ns = int(start_unix_s * 1e9)
    attributes = [
        _attribute("http.request.method", method),
        _attribute("url.path", path),
        _attribute("http.response.status_code", status),
        _attribute("rusta.request_id", request_id.decode("latin-1")),
    ]
    if route is not None:
        attributes.append(_attribute("http.route", route))
    if backend is not None:
        attributes.append(_attribute("rusta.backend", backend))
    failed = error is not None or status >= 500
    if failed:
        attributes.append(_attribute("error.type", error or str(status)))
    span: dict[str, Any] = {
        "traceId": trace_id,
        "spanId": traceparent_sent[36:52].decode("ascii"),
        "name": f"{method} {route}" if route else method,
        "kind": SPAN_KIND_SERVER,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + int(duration_s * 1e9)),
        "attributes": attributes,
    }
    parent = parse(client_traceparent) if client_traceparent else None
    if parent is not None and parent[0].decode("ascii") == trace_id:
        span["parentSpanId"] = parent[1].decode("ascii")
    if failed:
        span["status"] = {"code": STATUS_ERROR, "message": error or f"HTTP {status}"}
    return span


def _attribute(key: str, value: str | int) -> dict[str, Any]:
    # int64 values are JSON strings in the protobuf JSON mapping OTLP/JSON follows.
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _retry_after(value: str | None) -> float | None:
    """Seconds a Retry-After field asks for (delta-seconds or an HTTP date), None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
