"""The resilience blocks of `RouteSpec.policies` (retry, circuit_breaker), parsed once per route with defaults.

The control plane validates the same keys and refuses any other; the data plane still never trusts them blindly:
a value of the wrong type or out of range is replaced by its default, and a key no reader asks for (a row stored
before unknown keys were refused) is ignored, each logged once per table build, so a bad row degrades to the
defaults instead of breaking the proxy.

`retry` (null: the defaults below, which retry a refused connection once on another backend, as Kong does)

    max_retries                 1        retries after the first attempt, 0..10 (0: never retry)
    initial_backoff_ms          25       the first retry waits up to this long (full jitter: 0..cap)
    max_backoff_ms              1000     cap of the backoff; also the longest upstream Retry-After honoured
    backoff_multiplier          2.0      the cap grows by this factor with each retry
    retry_on_status_codes       []       upstream statuses that are retried (e.g. [502, 503, 504])
    retry_on_connection_error   true     retry when no response head arrived: refused, connect timeout,
                                         reset, invalid response, read timeout before the head
    retry_non_idempotent        false    also retry POST and PATCH (GET, HEAD, OPTIONS, PUT, DELETE always may)
    budget_ratio                0.2      retries are at most this share of the route's requests ...
    budget_window_s             10       ... over this rolling window ...
    budget_min_per_s            3        ... plus this many retries per second, so low traffic can still retry

    Nothing is retried once a byte of the response went to the client, nor a request whose body was streamed
    (only requests without a body, or with a Content-Length of at most 64 KiB, buffered first, are replayed).
    An upstream Retry-After (seconds) longer than max_backoff_ms means the upstream's answer goes out as is.

`circuit_breaker` (the passive health check: outcomes of real traffic, per backend and route)

    enabled                     true
    failure_threshold           5        consecutive failures that open the breaker
    failure_ratio               null     0..1: also open when failures / requests over window_s exceed it ...
    window_s                    10       ... within this rolling window ...
    min_requests                20       ... once the window holds at least this many requests
    open_s                      10       how long an open breaker fails fast before it half-opens
    half_open_requests          1        trial requests allowed at a time while half-open
    success_threshold           2        trial successes that close it again (any trial failure re-opens it)
    failure_statuses            [502, 503, 504]   upstream statuses that count as failures

    Connect errors, resets, invalid responses and timeouts always count as failures; a client that leaves
    counts as nothing.

`health_check` belongs to the control plane's active probes; the data plane only reads their verdicts from
`LiveTable.health`.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
ALL_METHODS = IDEMPOTENT_METHODS | {"POST", "PATCH", "TRACE", "CONNECT"}
MAX_REPLAY_BODY = 64 * 1024  # request bodies up to this size are buffered so that they can be sent again


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A route's `retry` block as typed values (milliseconds converted to seconds)."""

    max_retries: int = 1
    initial_backoff: float = 0.025
    max_backoff: float = 1.0
    backoff_multiplier: float = 2.0
    on_status: frozenset[int] = frozenset()
    on_connection_error: bool = True
    non_idempotent: bool = False
    budget_ratio: float = 0.2
    budget_window: float = 10.0
    budget_min_per_s: float = 3.0

    def allows(self, method: str) -> bool:
        """Whether a request with this method may be retried at all under this policy."""
        return self.max_retries > 0 and (self.non_idempotent or method in IDEMPOTENT_METHODS)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """A route's `circuit_breaker` block as typed values."""

    enabled: bool = True
    failure_threshold: int = 5
    failure_ratio: float | None = None
    window: float = 10.0
    min_requests: int = 20
    open_s: float = 10.0
    half_open_requests: int = 1
    success_threshold: int = 2
    failure_statuses: frozenset[int] = frozenset({502, 503, 504})


DEFAULT_RETRY = RetryPolicy()
DEFAULT_BREAKER = BreakerPolicy()


class _Reader:
    """Reads one block, falling back to the default (with a warning) for each unusable value."""

    def __init__(self, route: str, name: str, block: dict[str, Any]) -> None:
        self.route = route
        self.name = name
        self.block = block
        self.asked: set[str] = set()

    def _bad(self, key: str, value: object, default: object) -> None:
        log.warning("route %r: %s.%s = %r is not usable, using %r", self.route, self.name, key, value, default)

    def value(self, key: str) -> Any:
        self.asked.add(key)
        return self.block.get(key)

    def warn_unread(self) -> None:
        """Log each key of the block that no reader asked for (`_` keys are notes)."""
        for key in self.block:
            if key not in self.asked and not str(key).startswith("_"):
                log.warning("route %r: %s.%s is not a key Rusta knows, ignored", self.route, self.name, key)

    def number(self, key: str, default: float, low: float, high: float | None = None) -> float:
        value = self.value(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < low or (
                high is not None and value > high):
            self._bad(key, value, default)
            return default
        return float(value)

    def integer(self, key: str, default: int, low: int, high: int | None = None) -> int:
        value = self.value(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            self._bad(key, value, default)
            return default
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.value(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self._bad(key, value, default)
            return default
        return value

    def statuses(self, key: str, default: frozenset[int]) -> frozenset[int]:
        value = self.value(key)
        if value is None:
            return default
        if not isinstance(value, list | tuple) or not all(
                isinstance(code, int) and not isinstance(code, bool) and 100 <= code <= 599 for code in value):
            self._bad(key, value, default)
            return default
        return frozenset(value)


def _block(policies: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    block = (policies or {}).get(name)
    return block if isinstance(block, dict) else None


def retry_policy(route: str, policies: dict[str, Any] | None) -> RetryPolicy:
    """The route's retry policy; the defaults when it has no `retry` block."""
    block = _block(policies, "retry")
    if block is None:
        return DEFAULT_RETRY
    read = _Reader(route, "retry", block)
    d = DEFAULT_RETRY
    max_backoff_ms = read.number("max_backoff_ms", d.max_backoff * 1000, 0)
    policy = RetryPolicy(
        max_retries=read.integer("max_retries", d.max_retries, 0, 10),
        initial_backoff=min(read.number("initial_backoff_ms", d.initial_backoff * 1000, 0), max_backoff_ms) / 1000,
        max_backoff=max_backoff_ms / 1000,
        backoff_multiplier=read.number("backoff_multiplier", d.backoff_multiplier, 1.0),
        on_status=read.statuses("retry_on_status_codes", d.on_status),
        on_connection_error=read.flag("retry_on_connection_error", d.on_connection_error),
        non_idempotent=read.flag("retry_non_idempotent", d.non_idempotent),
        budget_ratio=read.number("budget_ratio", d.budget_ratio, 0),
        budget_window=read.number("budget_window_s", d.budget_window, 0.001),
        budget_min_per_s=read.number("budget_min_per_s", d.budget_min_per_s, 0),
    )
    read.warn_unread()
    return policy


def breaker_policy(route: str, policies: dict[str, Any] | None) -> BreakerPolicy:
    """The route's circuit-breaker policy; the defaults when it has no `circuit_breaker` block."""
    block = _block(policies, "circuit_breaker")
    if block is None:
        return DEFAULT_BREAKER
    read = _Reader(route, "circuit_breaker", block)
    d = DEFAULT_BREAKER
    ratio: float | None = None
    if read.value("failure_ratio") is not None:
        ratio = read.number("failure_ratio", -1.0, 0, 1)
        ratio = None if ratio < 0 else ratio  # unusable: the ratio rule stays off, as by default
    policy = BreakerPolicy(
        enabled=read.flag("enabled", d.enabled),
        failure_threshold=read.integer("failure_threshold", d.failure_threshold, 1),
        failure_ratio=ratio,
        window=read.number("window_s", d.window, 0.001),
        min_requests=read.integer("min_requests", d.min_requests, 1),
        open_s=read.number("open_s", d.open_s, 0),
        half_open_requests=read.integer("half_open_requests", d.half_open_requests, 1),
        success_threshold=read.integer("success_threshold", d.success_threshold, 1),
        failure_statuses=read.statuses("failure_statuses", d.failure_statuses),
    )
    read.warn_unread()
    return policy
