"""Limiter: one policy on one store, with the fail-open / fail-closed answer when the shared store is away."""
from __future__ import annotations

import dataclasses
from typing import Protocol

from protocols.limits.config import TOKEN_BUCKET, RateLimitPolicy
from protocols.limits.decision import Decision
from protocols.limits.local import LocalStore
from protocols.limits.redis_store import StoreUnavailable

# Retry-After of a fail-closed rejection: about when the store is probed again.
CLOSED_RETRY_S = 1.0


class Store(Protocol):
    async def hit(self, policy: RateLimitPolicy, key: str, now: float | None = None) -> Decision: ...


class Limiter:
    """Decides hits for `policy` on `store` (LocalStore when None). Never raises for store trouble.

    When the store raises StoreUnavailable: with `on_store_error: "open"` the decision comes from `fallback`
    (a LocalStore; pass one shared per process, or one is made) under the same policy, with `fallback_limit`
    as its limit, so each process still limits on its own; with "closed" it is a 429 with Retry-After 1.
    Either way `decision.degraded` is True, for metrics.
    """

    def __init__(self, policy: RateLimitPolicy, store: Store | None = None,
                 fallback: LocalStore | None = None) -> None:
        self.policy = policy
        self.store: Store = store if store is not None else LocalStore()
        self.fallback = fallback if fallback is not None else LocalStore()
        capacity = policy.fallback_limit
        if policy.algorithm == TOKEN_BUCKET:
            capacity = max(policy.fallback_limit, policy.capacity * policy.fallback_limit // policy.limit)
        self.fallback_policy = dataclasses.replace(policy, limit=policy.fallback_limit, capacity=capacity)

    @property
    def local(self) -> bool:
        """Whether the counters are in this process (a LocalStore): `decide_now` then answers without waiting."""
        return isinstance(self.store, LocalStore)

    def decide_now(self, key: str) -> Decision:
        """`hit` on a LocalStore, synchronously; only when `local`."""
        store = self.store
        assert isinstance(store, LocalStore)
        return store.decide(self.policy, key, store.clock())

    async def hit(self, key: str, now: float | None = None) -> Decision:
        """Spend one request on `key` (from `limit_key`). `now` is for tests; the proxy passes nothing."""
        try:
            return await self.store.hit(self.policy, key, now)
        except StoreUnavailable:
            if self.policy.on_store_error == "closed":
                return Decision(False, self.policy.capacity, 0, CLOSED_RETRY_S, CLOSED_RETRY_S, degraded=True)
            decision = await self.fallback.hit(self.fallback_policy, key, now)
            return dataclasses.replace(decision, degraded=True)
