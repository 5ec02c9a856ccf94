"""Retry arithmetic: the per-route retry budget, backoff with full jitter, and the upstream's Retry-After."""
from __future__ import annotations

import random

from protocols.resilience import RetryPolicy
from protocols.windows import RollingCounts

Headers = list[tuple[bytes, bytes]]


class RetryBudget(RollingCounts):
    """Caps retries of one route: at most `ratio` x requests over the window, plus `min_per_s` x window.

    Without it, a backend that fails every request would see (1 + max_retries) times the traffic exactly when
    it can least take it; with it, the extra load stays near `ratio` whatever `max_retries` says. Count each
    client request with `add(now)` (retries are not requests); `withdraw` takes a retry when one is left.
    """

    __slots__ = ("ratio", "reserve", "_key")

    def __init__(self, policy: RetryPolicy, now: float) -> None:
        super().__init__(policy.budget_window, now)  # total: requests, marked: retries
        self.ratio = policy.budget_ratio
        self.reserve = policy.budget_min_per_s * policy.budget_window
        self._key = (policy.budget_ratio, policy.budget_window, policy.budget_min_per_s)

    def fits(self, policy: RetryPolicy) -> bool:
        """Whether this budget was made for the same budget settings."""
        return self._key == (policy.budget_ratio, policy.budget_window, policy.budget_min_per_s)

    def withdraw(self, now: float) -> bool:
        """Take one retry from the budget; False (and nothing taken) when it is spent."""
        self.advance(now)
        if self.marked + 1 > self.ratio * self.total + self.reserve:
            return False
        self.mark(now)
        return True


def backoff(policy: RetryPolicy, retry: int, rand: random.Random | None = None) -> float:
    """Seconds to wait before retry number `retry` (1-based): uniform in [0, cap], the cap growing from
    initial_backoff by backoff_multiplier per retry up to max_backoff ("full jitter", so that clients that
    failed together do not come back together)."""
    cap = min(policy.max_backoff, policy.initial_backoff * policy.backoff_multiplier ** (retry - 1))
    if cap <= 0:
        return 0.0
    return (rand or random).uniform(0.0, cap)


def retry_after(headers: Headers) -> float | None:
    """The upstream's Retry-After in seconds when it gave one as delay-seconds; None otherwise (an HTTP-date
    is ignored: clocks of gateway and backend need not agree)."""
    for name, value in headers:
        if name == b"retry-after":
            value = value.strip()
            return float(int(value)) if value.isdigit() else None
    return None
