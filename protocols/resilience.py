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


@dataclass(frozen=True)
class Rule:
    """What one key of a block may hold: `kind` is int, number, bool, ratio_or_null or statuses (a list of HTTP
    status codes from `low` to `high`; `allow_empty` False refuses an empty list). Declared once, here: the
    control plane refuses what does not fit (routes.resilience_blocks), the API's schema shows the ranges, and
    this module's reader falls back to the default for a stored value that does not fit."""

    kind: str
    low: float = 0
    high: float = 0
    allow_empty: bool = True
    help: str = ""

    def fits(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "int":
            return not isinstance(value, bool) and isinstance(value, int) and self.low <= value <= self.high
        if self.kind == "ratio_or_null" and value is None:
            return True
        if self.kind in ("number", "ratio_or_null"):
            return _is_number(value) and self.low <= value <= self.high
        return isinstance(value, list) and (self.allow_empty or bool(value)) and all(
            not isinstance(code, bool) and isinstance(code, int) and self.low <= code <= self.high for code in value)

    def message(self) -> str:
        """What a value that does not fit is told."""
        low, high = _plain(self.low), _plain(self.high)
        if self.kind == "int":
            return f"Must be a whole number from {low} to {high}."
        if self.kind == "number":
            return f"Must be a number from {low} to {high}."
        if self.kind == "ratio_or_null":
            return f"Must be null or a number from {low} to {high}."
        if self.kind == "statuses":
            codes = "5xx HTTP status codes (500 to 599)" if low == 500 else f"HTTP status codes ({low} to {high})"
            return f"Must be a list of {codes}." if self.allow_empty else f"Must be a non-empty list of {codes}."
        return "Must be true or false."


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, int | float)


def _plain(number: float) -> float | int:
    return int(number) if number == int(number) else number


RETRY_RULES: dict[str, Rule] = {
    "max_retries": Rule("int", 0, 10, help="Retries after the first attempt (0: never retry)."),
    "initial_backoff_ms": Rule("int", 0, 60_000, help="The first retry waits up to this long (full jitter)."),
    "max_backoff_ms": Rule("int", 0, 600_000, help="Cap of the backoff; also caps an upstream's `Retry-After`."),
    "backoff_multiplier": Rule("number", 1, 10, help="The cap grows by this factor with each retry."),
    "retry_on_status_codes": Rule("statuses", 100, 599, help="Upstream statuses that are retried."),
    "retry_on_connection_error": Rule("bool", help="Retry when no response head arrived (refused, reset, timeout)."),
    "retry_non_idempotent": Rule("bool", help="Also retry POST and PATCH; only idempotent methods are retried by "
                                              "default."),
    "budget_ratio": Rule("number", 0, 1, help="Retries may add at most this share of extra upstream requests over "
                                              "the window."),
    "budget_window_s": Rule("int", 1, 600, help="The rolling window of the retry budget, in seconds."),
    "budget_min_per_s": Rule("number", 0, 1000, help="Retries per second always allowed, so that a quiet route can "
                                                     "still retry."),
}
BREAKER_RULES: dict[str, Rule] = {
    "enabled": Rule("bool", help="false: the route's backends have no breaker."),
    "failure_threshold": Rule("int", 1, 1000, help="Consecutive failures that open the breaker."),
    "failure_ratio": Rule("ratio_or_null", 0, 1, help="Also open when this share of requests failed within "
                                                      "`window_s` (once `min_requests` were made); null: consecutive "
                                                      "failures only."),
    "window_s": Rule("int", 1, 3600, help="The rolling window of `failure_ratio`, in seconds."),
    "min_requests": Rule("int", 1, 100_000, help="Requests the window needs before `failure_ratio` counts."),
    "open_s": Rule("int", 1, 3600, help="Seconds an open breaker fails fast before it lets trials through."),
    "half_open_requests": Rule("int", 1, 1000, help="Trial requests let through at once while half-open."),
    "success_threshold": Rule("int", 1, 1000, help="Successful trials that close the breaker again."),
    "failure_statuses": Rule("statuses", 500, 599, help="Upstream statuses that count as failures, besides "
                                                        "connection errors and timeouts."),
}


class _Reader:
    """Reads one block, falling back to the default (with a warning) for each unusable value."""

    def __init__(self, route: str, name: str, block: dict[str, Any], rules: dict[str, Rule]) -> None:
        self.route = route
        self.name = name
        self.block = block
        self.rules = rules
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

    def get(self, key: str, default: Any) -> Any:
        """The key's value when it fits its rule, else (null, absent or unusable) the default."""
        value = self.value(key)
        if value is None:
            return default
        if not self.rules[key].fits(value):
            self._bad(key, value, default)
            return default
        return value


def _block(policies: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
    block = (policies or {}).get(name)
    return block if isinstance(block, dict) else None


def retry_policy(route: str, policies: dict[str, Any] | None) -> RetryPolicy:
    """The route's retry policy; the defaults when it has no `retry` block."""
    block = _block(policies, "retry")
    if block is None:
        return DEFAULT_RETRY
    read = _Reader(route, "retry", block, RETRY_RULES)
    d = DEFAULT_RETRY
    max_backoff_ms = read.get("max_backoff_ms", d.max_backoff * 1000)
    policy = RetryPolicy(
        max_retries=read.get("max_retries", d.max_retries),
        initial_backoff=min(read.get("initial_backoff_ms", d.initial_backoff * 1000), max_backoff_ms) / 1000,
        max_backoff=max_backoff_ms / 1000,
        backoff_multiplier=float(read.get("backoff_multiplier", d.backoff_multiplier)),
        on_status=frozenset(read.get("retry_on_status_codes", d.on_status)),
        on_connection_error=read.get("retry_on_connection_error", d.on_connection_error),
        non_idempotent=read.get("retry_non_idempotent", d.non_idempotent),
        budget_ratio=float(read.get("budget_ratio", d.budget_ratio)),
        budget_window=float(read.get("budget_window_s", d.budget_window)),
        budget_min_per_s=float(read.get("budget_min_per_s", d.budget_min_per_s)),
    )
    read.warn_unread()
    return policy


def breaker_policy(route: str, policies: dict[str, Any] | None) -> BreakerPolicy:
    """The route's circuit-breaker policy; the defaults when it has no `circuit_breaker` block."""
    block = _block(policies, "circuit_breaker")
    if block is None:
        return DEFAULT_BREAKER
    read = _Reader(route, "circuit_breaker", block, BREAKER_RULES)
    d = DEFAULT_BREAKER
    ratio = read.get("failure_ratio", d.failure_ratio)
    policy = BreakerPolicy(
        enabled=read.get("enabled", d.enabled),
        failure_threshold=read.get("failure_threshold", d.failure_threshold),
        failure_ratio=None if ratio is None else float(ratio),
        window=float(read.get("window_s", d.window)),
        min_requests=read.get("min_requests", d.min_requests),
        open_s=float(read.get("open_s", d.open_s)),
        half_open_requests=read.get("half_open_requests", d.half_open_requests),
        success_threshold=read.get("success_threshold", d.success_threshold),
        failure_statuses=frozenset(read.get("failure_statuses", d.failure_statuses)),
    )
    read.warn_unread()
    return policy
