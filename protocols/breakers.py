"""Circuit breakers per backend of a route (closed -> open -> half-open -> closed), and their read-only snapshot.

A breaker is the passive health check: the proxy reports the outcome of every exchange, and an open breaker
makes every balancing strategy skip the backend without a connection attempt. Every method takes `now` from
the caller's clock (monotonic seconds), so the state machine is tested with a hand-driven clock.
"""
from __future__ import annotations

import weakref
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from protocols.resilience import DEFAULT_BREAKER, BreakerPolicy
from protocols.windows import RollingCounts

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"


class BreakerListener(Protocol):
    def breaker_moved(self, closed: bool) -> None:
        """Called when a breaker leaves (closed=False) or returns to (closed=True) the closed state."""


class CircuitBreaker:
    """The state of one backend of one route.

    closed: requests flow; `failure_threshold` consecutive failures (or, when `failure_ratio` is set, a failure
    ratio above it over `window` with at least `min_requests`) open it.
    open: no request is sent for `open_s` seconds; then the first availability check half-opens it.
    half-open: up to `half_open_requests` trial requests at a time; `success_threshold` trial successes close
    it, any trial failure opens it again. Outcomes of requests that started before (not trials) are ignored.
    """

    __slots__ = ("policy", "state", "failures", "successes", "opened_at", "trials", "generation", "window",
                 "listener")

    def __init__(self, policy: BreakerPolicy = DEFAULT_BREAKER, listener: BreakerListener | None = None,
                 now: float = 0.0) -> None:
        self.policy = policy
        self.state = CLOSED
        self.failures = 0  # consecutive
        self.successes = 0  # consecutive trial successes while half-open
        self.opened_at: float | None = None
        self.trials = 0  # trial requests in flight while half-open
        self.generation = 0  # bumps on every half-open, so a stale trial cannot free a newer trial's slot
        self.window = RollingCounts(policy.window, now) if policy.failure_ratio is not None else None
        self.listener = listener

    def configure(self, policy: BreakerPolicy, now: float) -> None:
        """Adopt a route's new policy (a table rebuild) while keeping the current state."""
        if policy == self.policy:
            return
        self.policy = policy
        if policy.failure_ratio is None:
            self.window = None
        elif self.window is None or self.window.window != policy.window:
            self.window = RollingCounts(policy.window, now)
        if not policy.enabled and self.state is not CLOSED:
            self._close()

    def available(self, now: float) -> bool:
        """Whether a request may go to this backend now (half-opens an open breaker whose time is up)."""
        state = self.state
        if state is CLOSED:
            return True
        if state is OPEN:
            assert self.opened_at is not None
            if now - self.opened_at < self.policy.open_s:
                return False
            self.state = HALF_OPEN
            self.successes = 0
            self.trials = 0
            self.generation += 1
        return self.trials < self.policy.half_open_requests

    def acquire(self) -> int:
        """A request was sent: its trial ticket (the half-open generation), or 0 when it is not a trial."""
        if self.state is HALF_OPEN:
            self.trials += 1
            return self.generation
        return 0

    def record(self, failed: bool | None, trial: int, now: float) -> None:
        """The outcome of a request: failed, succeeded, or None when it says nothing about the backend."""
        policy = self.policy
        if not policy.enabled:
            return
        state = self.state
        if state is CLOSED:
            if failed is None:
                return
            window = self.window
            if failed:
                self.failures += 1
                if window is not None:
                    window.add(now, True)
                if self.failures >= policy.failure_threshold or (
                        window is not None and window.total >= policy.min_requests
                        and window.marked > policy.failure_ratio * window.total):  # type: ignore[operator]
                    self._open(now)
            else:
                self.failures = 0
                if window is not None:
                    window.add(now)
            return
        if state is HALF_OPEN and trial == self.generation:
            self.trials -= 1
            if failed is None:
                return
            if failed:
                self.failures += 1
                self._open(now)
            else:
                self.successes += 1
                if self.successes >= policy.success_threshold:
                    self._close()
        # Open, or a late answer to a request sent before the breaker opened: it changes nothing.

    def retry_in(self, now: float) -> float:
        """Seconds until this breaker lets a request through again (0 when it does now)."""
        if self.state is OPEN and self.opened_at is not None:
            return max(0.0, self.opened_at + self.policy.open_s - now)
        return 0.0

    def _open(self, now: float) -> None:
        was_closed = self.state is CLOSED
        self.state = OPEN
        self.opened_at = now
        self.successes = 0
        self.trials = 0
        if was_closed and self.listener is not None:
            self.listener.breaker_moved(False)

    def _close(self) -> None:
        self.state = CLOSED
        self.failures = 0
        self.successes = 0
        self.trials = 0
        self.opened_at = None
        if self.window is not None:
            self.window.reset()
        if self.listener is not None:
            self.listener.breaker_moved(True)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """One breaker as the metrics exporter and the admin see it; `opened_at` is a Unix time (None when closed)."""

    route: str
    backend: str
    state: str
    consecutive_failures: int
    opened_at: float | None


class BreakerSource(Protocol):
    def breaker_rows(self) -> Iterable[BreakerSnapshot]:
        """Every breaker this source holds, as snapshots."""


_sources: weakref.WeakSet[BreakerSource] = weakref.WeakSet()


def register(source: BreakerSource) -> None:
    """Make a holder of breakers (each ProxyApp's backend board) visible to `snapshot()`."""
    _sources.add(source)


def snapshot() -> list[BreakerSnapshot]:
    """Every breaker of this process, sorted by route and backend: a copy, safe to read from any thread."""
    rows = [row for source in list(_sources) for row in source.breaker_rows()]
    rows.sort(key=lambda row: (row.route, row.backend))
    return rows
