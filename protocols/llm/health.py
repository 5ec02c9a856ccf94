"""What one gateway process knows of its LLM targets' health: each target's circuit breaker, each route's budget
of fallbacks, and each target's time to the first token (for routes whose balancing is `latency_aware`).

The breaker and the budget follow the route's own `circuit_breaker` and `retry` blocks, as for an http route's
backends: a target that fails (5xx, a timeout, unreachable) `failure_threshold` times in a row is left alone for
`open_s`, then tried again; fallbacks beyond the route's retry budget (`budget_ratio` of its requests plus
`budget_min_per_s`) are not made, so a provider outage cannot double the load on the others. A 429 is no failure
here: the target is held until its Retry-After has passed (protocols.llm.exchange.RateLimits).
"""
from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocols.breakers import CircuitBreaker
from protocols.llm.targets import Target
from protocols.resilience import DEFAULT_BREAKER, DEFAULT_RETRY, BreakerPolicy, RetryPolicy
from protocols.retries import RetryBudget


@dataclass(frozen=True)
class Resilience:
    """An llm route's `circuit_breaker` and `retry` blocks, and whether it orders its targets by first-token
    time (`load_balancing_strategy: latency_aware`)."""

    breaker: BreakerPolicy = DEFAULT_BREAKER
    retry: RetryPolicy = DEFAULT_RETRY
    latency_aware: bool = False


DEFAULT_RESILIENCE = Resilience()
# How fast the time-to-first-token average follows new samples (the weight of the newest).
TTFT_WEIGHT = 0.3
_RANDOM = random.Random()


class TargetHealth:
    """Breakers, fallback budgets and first-token times, by (route id, target name); one per data plane."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._breakers: dict[tuple[int, str], CircuitBreaker] = {}
        self._budgets: dict[int, RetryBudget] = {}
        self._ttft: dict[tuple[int, str], float] = {}

    def breaker(self, route_id: int, target: str, policy: BreakerPolicy = DEFAULT_BREAKER) -> CircuitBreaker:
        key = (route_id, target)
        found = self._breakers.get(key)
        if found is None:
            found = self._breakers[key] = CircuitBreaker(policy, None, self.clock())
        else:
            found.configure(policy, self.clock())
        return found

    def admit(self, route_id: int, policy: RetryPolicy = DEFAULT_RETRY) -> None:
        """A client request of the route: what its fallback budget is a share of."""
        budget = self._budget(route_id, policy)
        budget.add(self.clock())

    def may_fall_back(self, route_id: int, policy: RetryPolicy = DEFAULT_RETRY) -> bool:
        """Take one fallback from the route's budget; False when it is spent."""
        return self._budget(route_id, policy).withdraw(self.clock())

    def first_token(self, route_id: int, target: str, seconds: float) -> None:
        key = (route_id, target)
        known = self._ttft.get(key)
        self._ttft[key] = seconds if known is None else known + TTFT_WEIGHT * (seconds - known)

    def order(self, route_id: int, targets: Sequence[Target], latency_aware: bool,
              rng: random.Random | None = None) -> list[int]:
        """The order to ask the targets in: by priority; among equals, the fastest first token first (targets
        never measured first, so each gets measured) with `latency_aware`, else a weighted random order."""
        choices = (rng or _RANDOM).choices
        order: list[int] = []
        for priority in sorted({target.priority for target in targets}):
            group = [index for index, target in enumerate(targets) if target.priority == priority]
            if latency_aware:
                order += sorted(group, key=lambda index: self._ttft.get((route_id, targets[index].name), -1.0))
                continue
            while group:
                chosen = choices(group, [max(targets[index].weight, 1) for index in group])[0]
                order.append(chosen)
                group.remove(chosen)
        return order

    def _budget(self, route_id: int, policy: RetryPolicy) -> RetryBudget:
        budget = self._budgets.get(route_id)
        if budget is None or not budget.fits(policy):
            budget = self._budgets[route_id] = RetryBudget(policy, self.clock())
        return budget
