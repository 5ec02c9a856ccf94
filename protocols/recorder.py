"""The gateway's in-memory metrics recorder: plain dict and list increments on the hot path, no I/O, no locks.

A worker process has one `Recorder` (`recorder` below), used from its event loop only. The proxy reports each
finished request with `record_request`, each failed upstream attempt with `upstream_error`, and brackets every
request (or tunnel) with `connection_opened` / `connection_closed`. Everything a request touches lands in one
list ("cell") of the current window, keyed by (route, method, status, backend, error): one dict lookup, a few
additions and one or two `bisect` calls on precomputed bucket bounds. A request that a consumer made (an API key,
or a JWT whose subject is a consumer's) also lands in a smaller cell of the consumer window, keyed by (consumer,
route, status): one more dict lookup and a few additions; a request without a consumer pays one `if`.

Once a second the worker's flusher (metrics.flusher), also on the event loop, calls `take_window()`: the window
is folded into the cumulative totals that /metrics exposes, and handed over to the history writer, which turns
it into 10-second points off the event loop; `take_consumer_window()` hands over the consumer window the same
way (history only: /metrics has no per-consumer families, whose label values would grow with the consumers).
Tests drive the recorder by hand. `NullRecorder` records nothing (RUSTA_METRICS_RECORD=false); the worker points
`websocket_source` at the WebSocket proxy's counters, which `snapshot` copies into the totals.

It lives in the data plane because the proxy calls it on every request; the metrics app (flusher, exposition,
history, dashboard) reads what it counted, and nothing here imports back from there. Whether to record at all
(RUSTA_METRICS_RECORD) is decided by the caller that builds ProxyOptions.
"""
from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Latency bucket upper bounds in seconds, shared by the Prometheus histograms and the stored history (so that
# quantiles can be read back from either). The last bucket (+Inf) is implicit.
LATENCY_BOUNDS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)
BUCKETS = len(LATENCY_BOUNDS) + 1

# Where each figure lives in a window cell (a flat list: cheaper to update than an object).
COUNT, DURATION_SUM, UPSTREAM_SUM, UPSTREAM_COUNT, DURATION_MIN, DURATION_MAX, BYTES_IN, BYTES_OUT = range(8)
DURATION_BUCKETS = 8
UPSTREAM_BUCKETS = DURATION_BUCKETS + BUCKETS
CELL_SIZE = UPSTREAM_BUCKETS + BUCKETS
_EMPTY_CELL: list[Any] = [0, 0.0, 0.0, 0, float("inf"), 0.0, 0, 0] + [0] * (2 * BUCKETS)

# Gateway error types (protocols.errors) as the kind label of rusta_upstream_errors_total.
UPSTREAM_ERROR_KINDS = {
    "upstream_connect_refused": "refused",
    "upstream_name_not_resolved": "dns",
    "upstream_reset": "reset",
    "upstream_connect_timeout": "timeout",
    "upstream_timeout": "timeout",
    "upstream_invalid_response": "invalid",
}
KINDS = frozenset({"refused", "dns", "reset", "timeout", "invalid"})
# What an abuse sanction did to a refused request (rusta_abuse_actions_total's action label).
ABUSE_ACTIONS = ("block", "lower", "personalized")
STATUS_CLASSES = ("0xx", "1xx", "2xx", "3xx", "4xx", "5xx")
# The WebSocket proxy's counters (protocols.websocket.metrics) that /metrics shows; "open" is a gauge.
WEBSOCKET_COUNTERS = ("open", "opened", "messages_from_client", "messages_to_client", "bytes_from_client",
                      "bytes_to_client")

WindowKey = tuple[str, str, int, str, str]  # route, method, status, backend, error type ("" when none)
ConsumerKey = tuple[str, str, int]  # consumer, route ("" when none), status

# A consumer window cell: count, duration sum, min and max, then the duration's latency bucket counts.
CONSUMER_COUNT, CONSUMER_SUM, CONSUMER_MIN, CONSUMER_MAX = range(4)
CONSUMER_BUCKETS = 4
_EMPTY_CONSUMER_CELL: list[Any] = [0, 0.0, float("inf"), 0.0] + [0] * BUCKETS


def status_class(status: int) -> str:
    """`2xx`, `4xx`...; `0xx` for a request that got no status (the client left first)."""
    index = status // 100
    return STATUS_CLASSES[index] if 0 <= index < len(STATUS_CLASSES) else "0xx"


def new_histogram() -> list[float]:
    """Non-cumulative bucket counts followed by the sum of observations."""
    return [0] * BUCKETS + [0.0]


@dataclass
class Totals:
    """Cumulative figures since the process started, as /metrics shows them (all plain, picklable data)."""

    requests: dict[tuple[str, str, str], int] = field(default_factory=dict)  # route, method, status class
    request_seconds: dict[str, list[float]] = field(default_factory=dict)  # route -> histogram
    upstream_seconds: dict[str, list[float]] = field(default_factory=dict)  # backend -> histogram
    bytes: dict[tuple[str, str], int] = field(default_factory=dict)  # route, "in" | "out"
    upstream_errors: dict[tuple[str, str], int] = field(default_factory=dict)  # backend, kind
    rate_limited: dict[str, int] = field(default_factory=dict)  # route
    cache: dict[tuple[str, str], int] = field(default_factory=dict)  # route, "hit" | "miss"
    cache_stored: dict[tuple[str, str], int] = field(default_factory=dict)  # route, "entries" | "bytes"
    breaker_opens: dict[tuple[str, str], int] = field(default_factory=dict)  # route, backend (seen by the flusher)
    websocket: dict[tuple[str, str], int] = field(default_factory=dict)  # route, one of WEBSOCKET_COUNTERS
    tls_handshake_errors: dict[str, int] = field(default_factory=dict)  # reason (TLS_HANDSHAKE_REASONS)
    grpc_calls: dict[tuple[str, str], int] = field(default_factory=dict)  # route, grpc-status ("0", "14"...)
    abuse_actions: dict[tuple[str, str], int] = field(default_factory=dict)  # route, ABUSE_ACTIONS
    abuse_overflow: dict[str, int] = field(default_factory=dict)  # route: requests counted under `overflow`
    connections_active: int = 0
    connections_peak: int = 0

    def as_json(self) -> dict[str, Any]:
        """A JSON-friendly copy (tuple keys joined with a unit separator)."""
        return {
            "requests": _join(self.requests), "request_seconds": dict(self.request_seconds),
            "upstream_seconds": dict(self.upstream_seconds), "bytes": _join(self.bytes),
            "upstream_errors": _join(self.upstream_errors), "rate_limited": dict(self.rate_limited),
            "cache": _join(self.cache), "cache_stored": _join(self.cache_stored),
            "breaker_opens": _join(self.breaker_opens),
            "websocket": _join(self.websocket), "grpc_calls": _join(self.grpc_calls),
            "tls_handshake_errors": dict(self.tls_handshake_errors),
            "abuse_actions": _join(self.abuse_actions), "abuse_overflow": dict(self.abuse_overflow),
            "connections_active": self.connections_active,
            "connections_peak": self.connections_peak,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Totals:
        return cls(
            requests=_split(data.get("requests", {})), request_seconds=dict(data.get("request_seconds", {})),
            upstream_seconds=dict(data.get("upstream_seconds", {})), bytes=_split(data.get("bytes", {})),
            upstream_errors=_split(data.get("upstream_errors", {})), rate_limited=dict(data.get("rate_limited", {})),
            cache=_split(data.get("cache", {})), cache_stored=_split(data.get("cache_stored", {})),
            breaker_opens=_split(data.get("breaker_opens", {})),
            websocket=_split(data.get("websocket", {})), grpc_calls=_split(data.get("grpc_calls", {})),
            tls_handshake_errors=dict(data.get("tls_handshake_errors", {})),
            abuse_actions=_split(data.get("abuse_actions", {})), abuse_overflow=dict(data.get("abuse_overflow", {})),
            connections_active=int(data.get("connections_active", 0)),
            connections_peak=int(data.get("connections_peak", 0)),
        )

    def add(self, other: Totals, *, gauges: bool = True) -> None:
        """Add `other`'s figures into these (gauges too, unless told not to: a dead process has none)."""
        pairs: tuple[tuple[dict[Any, int], dict[Any, int]], ...] = (
            (self.requests, other.requests), (self.bytes, other.bytes), (self.upstream_errors, other.upstream_errors),
            (self.rate_limited, other.rate_limited), (self.cache, other.cache),
            (self.cache_stored, other.cache_stored),
            (self.breaker_opens, other.breaker_opens), (self.tls_handshake_errors, other.tls_handshake_errors),
            (self.grpc_calls, other.grpc_calls), (self.abuse_actions, other.abuse_actions),
            (self.abuse_overflow, other.abuse_overflow))
        for mine, theirs in pairs:
            for key, value in theirs.items():
                mine[key] = mine.get(key, 0) + value
        for mine_h, theirs_h in ((self.request_seconds, other.request_seconds),
                                 (self.upstream_seconds, other.upstream_seconds)):
            for key, histogram in theirs_h.items():
                target = mine_h.get(key)
                if target is None:
                    mine_h[key] = list(histogram)
                else:
                    for index, observed in enumerate(histogram):
                        target[index] += observed
        mine_ws = self.websocket
        for key, value in other.websocket.items():
            if gauges or key[1] != "open":
                mine_ws[key] = mine_ws.get(key, 0) + value
        if gauges:
            self.connections_active += other.connections_active
            self.connections_peak += other.connections_peak


class Recorder:
    """Counts what the proxy did; see the module docstring for who calls what, and when."""

    def __init__(self) -> None:
        self.window: dict[WindowKey, list[Any]] = {}
        self.consumers: dict[ConsumerKey, list[Any]] = {}
        self.totals = Totals()
        self.active = 0
        self.peak = 0
        self._breaker_states: dict[tuple[str, str], str] = {}
        self.websocket_source: Callable[[], list[dict[str, Any]]] | None = None

    # --- The hot path -------------------------------------------------------------------------------------

    def record_request(self, route: str | None, method: str, status: int, duration_s: float,
                       upstream_s: float | None, bytes_in: int, bytes_out: int, backend: str | None,
                       error_kind: str | None, consumer: str | None = None) -> None:
        """One finished request: `route` and `backend` None (or "") when none was reached, `upstream_s` the time
        until the backend's response head (None when no backend answered), `error_kind` the gateway error type
        (`upstream_timeout`...) when the gateway answered or cut the response short, `consumer` the name of the
        consumer that made it (None when no credential resolved to one)."""
        route = route or ""
        key = (route, method, status, backend or "", error_kind or "")
        cell = self.window.get(key)
        if cell is None:
            cell = self.window[key] = _EMPTY_CELL.copy()
        cell[0] += 1
        cell[1] += duration_s
        if duration_s < cell[4]:
            cell[4] = duration_s
        if duration_s > cell[5]:
            cell[5] = duration_s
        cell[6] += bytes_in
        cell[7] += bytes_out
        slot = bisect_left(LATENCY_BOUNDS, duration_s)
        cell[8 + slot] += 1
        if upstream_s is not None:
            cell[2] += upstream_s
            cell[3] += 1
            cell[UPSTREAM_BUCKETS + bisect_left(LATENCY_BOUNDS, upstream_s)] += 1
        if consumer:
            consumer_key = (consumer, route, status)
            mine = self.consumers.get(consumer_key)
            if mine is None:
                mine = self.consumers[consumer_key] = _EMPTY_CONSUMER_CELL.copy()
            mine[0] += 1
            mine[1] += duration_s
            if duration_s < mine[2]:
                mine[2] = duration_s
            if duration_s > mine[3]:
                mine[3] = duration_s
            mine[4 + slot] += 1

    def upstream_error(self, backend: str, kind: str) -> None:
        """One failed upstream attempt (retries count each): `kind` is refused, dns, reset, timeout or invalid, or
        a gateway error type that maps to one (`upstream_connect_refused`...)."""
        kind = UPSTREAM_ERROR_KINDS.get(kind, kind)
        key = (backend, kind)
        errors = self.totals.upstream_errors
        errors[key] = errors.get(key, 0) + 1

    def connection_opened(self) -> None:
        self.active += 1
        if self.active > self.peak:
            self.peak = self.active

    def connection_closed(self) -> None:
        self.active -= 1

    def breakers_seen(self, rows: list[dict[str, Any]]) -> None:
        """The flusher's view of the breakers (once a second): count each move into the open state."""
        opens = self.totals.breaker_opens
        seen = self._breaker_states
        for row in rows:
            key = (row["route"], row["backend"])
            if row["state"] == "open" and seen.get(key) != "open":
                opens[key] = opens.get(key, 0) + 1
            seen[key] = row["state"]

    def grpc_call(self, route: str | None, grpc_status: int) -> None:
        """One finished gRPC call and the status its client got (the backend's, or the gateway's own)."""
        key = (route or "", str(grpc_status))
        counts = self.totals.grpc_calls
        counts[key] = counts.get(key, 0) + 1

    def rate_limited(self, route: str) -> None:
        counts = self.totals.rate_limited
        counts[route] = counts.get(route, 0) + 1

    def cache_result(self, route: str, hit: bool) -> None:
        key = (route, "hit" if hit else "miss")
        counts = self.totals.cache
        counts[key] = counts.get(key, 0) + 1

    def tls_handshake_failed(self, reason: str) -> None:
        """A TLS handshake on the proxy's TLS listener failed (protocols.tls.contexts.failure_reason's label)."""
        counts = self.totals.tls_handshake_errors
        counts[reason] = counts.get(reason, 0) + 1

    def abuse_action(self, route: str, action: str) -> None:
        """A request refused by an abuse sanction: `action` is block, lower or personalized (ABUSE_ACTIONS)."""
        key = (route, action)
        counts = self.totals.abuse_actions
        counts[key] = counts.get(key, 0) + 1

    def abuse_overflow(self, route: str) -> None:
        """A request counted under the client `overflow`: the abuse counters' window was full
        (protocols.abuse.counters)."""
        counts = self.totals.abuse_overflow
        counts[route] = counts.get(route, 0) + 1

    def cache_stored(self, route: str, size: int) -> None:
        """An answer of `size` body bytes was stored in the response cache for `route`."""
        counts = self.totals.cache_stored
        counts[(route, "entries")] = counts.get((route, "entries"), 0) + 1
        counts[(route, "bytes")] = counts.get((route, "bytes"), 0) + size

    # --- Off the hot path: the flusher, on the same event loop --------------------------------------------

    def take_window(self) -> dict[WindowKey, list[Any]]:
        """Close the current window: fold it into the totals and return it (a new one starts empty)."""
        window, self.window = self.window, {}
        totals = self.totals
        requests, request_seconds, upstream_seconds, byte_counts = (
            totals.requests, totals.request_seconds, totals.upstream_seconds, totals.bytes)
        for (route, method, status, backend, _error), cell in window.items():
            key = (route, method, status_class(status))
            requests[key] = requests.get(key, 0) + cell[COUNT]
            histogram = request_seconds.get(route)
            if histogram is None:
                histogram = request_seconds[route] = new_histogram()
            _fold(histogram, cell, DURATION_BUCKETS, cell[DURATION_SUM])
            if cell[UPSTREAM_COUNT] and backend:
                histogram = upstream_seconds.get(backend)
                if histogram is None:
                    histogram = upstream_seconds[backend] = new_histogram()
                _fold(histogram, cell, UPSTREAM_BUCKETS, cell[UPSTREAM_SUM])
            for direction, index in (("in", BYTES_IN), ("out", BYTES_OUT)):
                byte_key = (route, direction)
                byte_counts[byte_key] = byte_counts.get(byte_key, 0) + cell[index]
        totals.connections_active = self.active
        totals.connections_peak = self.peak
        return window

    def take_consumer_window(self) -> dict[ConsumerKey, list[Any]]:
        """Close the consumer window (called with `take_window`, on the same loop) and return it."""
        consumers, self.consumers = self.consumers, {}
        return consumers

    def snapshot(self) -> Totals:
        """A copy of the cumulative totals (call right after `take_window` for up-to-date figures)."""
        totals = self.totals
        return Totals(
            requests=dict(totals.requests),
            request_seconds={key: list(value) for key, value in totals.request_seconds.items()},
            upstream_seconds={key: list(value) for key, value in totals.upstream_seconds.items()},
            bytes=dict(totals.bytes), upstream_errors=dict(totals.upstream_errors),
            rate_limited=dict(totals.rate_limited), cache=dict(totals.cache), cache_stored=dict(totals.cache_stored),
            breaker_opens=dict(totals.breaker_opens), websocket=self.websocket_counters(),
            tls_handshake_errors=dict(totals.tls_handshake_errors), grpc_calls=dict(totals.grpc_calls),
            abuse_actions=dict(totals.abuse_actions), abuse_overflow=dict(totals.abuse_overflow),
            connections_active=self.active, connections_peak=self.peak,
        )

    def websocket_counters(self) -> dict[tuple[str, str], int]:
        """The WebSocket proxy's counters by (route, counter), read from `websocket_source` (set by the worker to
        `WebSocketProxy.metrics.snapshot`; routes renamed into one name are added up)."""
        source = self.websocket_source
        counters: dict[tuple[str, str], int] = {}
        if source is None:
            return counters
        for row in source():
            route = row["route"]
            for name in WEBSOCKET_COUNTERS:
                key = (route, name)
                counters[key] = counters.get(key, 0) + int(row.get(name, 0))
        return counters


def _fold(histogram: list[float], cell: list[Any], offset: int, total: float) -> None:
    for index in range(BUCKETS):
        histogram[index] += cell[offset + index]
    histogram[BUCKETS] += total


_SEP = "\x1f"


def _join(counts: dict[Any, int]) -> dict[str, int]:
    return {_SEP.join(key): value for key, value in counts.items()}


def _split(counts: dict[str, int]) -> dict[Any, int]:
    return {tuple(key.split(_SEP)): value for key, value in counts.items()}


class NullRecorder(Recorder):
    """A recorder that records nothing: what `RUSTA_METRICS_RECORD=false` puts on the hot path (the bench
    measures recording's cost against it). /metrics then shows no request figures for this process."""

    def record_request(self, route: str | None, method: str, status: int, duration_s: float,
                       upstream_s: float | None, bytes_in: int, bytes_out: int, backend: str | None,
                       error_kind: str | None, consumer: str | None = None) -> None:
        return None

    def upstream_error(self, backend: str, kind: str) -> None:
        return None

    def connection_opened(self) -> None:
        return None

    def connection_closed(self) -> None:
        return None

    def grpc_call(self, route: str | None, grpc_status: int) -> None:
        return None

    def rate_limited(self, route: str) -> None:
        return None

    def cache_result(self, route: str, hit: bool) -> None:
        return None

    def cache_stored(self, route: str, size: int) -> None:
        return None

    def tls_handshake_failed(self, reason: str) -> None:
        return None

    def abuse_action(self, route: str, action: str) -> None:
        return None

    def abuse_overflow(self, route: str) -> None:
        return None


recorder = Recorder()
"""The process's recorder: ProxyApp and the WebSocket proxy report into it, the worker's flusher drains it."""
