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
# Policies with another limit kept per Limiter (clients whose limit an abuse sanction changed share a few).
_MAX_VARIANTS = 256


class Store(Protocol):
    async def hit(self, policy: RateLimitPolicy, key: str, now: float | None = None) -> Decision: ...


class Limiter:
    """Decides hits for `policy` on `store` (LocalStore when None). Never raises for store trouble.

    When the store raises StoreUnavailable: with `on_store_error: "open"` the decision comes from `fallback`
    (a LocalStore; pass one shared per process, or one is made) under the same policy, with `fallback_limit`
    as its limit, so each process still limits on its own; with "closed" it is a 429 with Retry-After 1.
    Either way `decision.degraded` is True, for metrics.

    `hit(key, limit=..., window_s=...)` decides one key under another limit (an abuse verdict lowered it, or the
    client has a personalized one: protocols.abuse.sanctions): the same store and the same counter, with the
    policy's limit (and a token bucket's capacity, in proportion) replaced. The variants are kept, so each is
    one object, which RedisStore's encoded commands are kept by.
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
        self._variants: dict[tuple[int, float], tuple[RateLimitPolicy, RateLimitPolicy]] = {}

    @property
    def local(self) -> bool:
        """Whether the counters are in this process (a LocalStore): `decide_now` then answers without waiting."""
        return isinstance(self.store, LocalStore)

    def decide_now(self, key: str, *, limit: int | None = None, window_s: float | None = None) -> Decision:
        """`hit` on a LocalStore, synchronously; only when `local`."""
        store = self.store
        assert isinstance(store, LocalStore)
        policy = self.policy if limit is None else self._variant(limit, window_s or self.policy.window_s)[0]
        return store.decide(policy, key, store.clock())

    async def hit(self, key: str, now: float | None = None, *, limit: int | None = None,
                  window_s: float | None = None) -> Decision:
        """Spend one request on `key` (from `limit_key`), under the policy's limit or `limit` per `window_s` (the
        policy's window when None). `now` is for tests; the proxy passes nothing."""
        policy, fallback_policy = self.policy, self.fallback_policy
        if limit is not None:
            policy, fallback_policy = self._variant(limit, window_s or policy.window_s)
        try:
            return await self.store.hit(policy, key, now)
        except StoreUnavailable:
            if policy.on_store_error == "closed":
                return Decision(False, policy.capacity, 0, CLOSED_RETRY_S, CLOSED_RETRY_S, degraded=True)
            decision = await self.fallback.hit(fallback_policy, key, now)
            return dataclasses.replace(decision, degraded=True)

    def _variant(self, limit: int, window_s: float) -> tuple[RateLimitPolicy, RateLimitPolicy]:
        """The policy (and its fallback) with `limit` per `window_s`; the same objects for the same figures."""
        variants = self._variants
        found = variants.get((limit, window_s))
        if found is not None:
            return found
        policy = self.policy
        bucket = policy.algorithm == TOKEN_BUCKET
        capacity = max(limit, policy.capacity * limit // policy.limit) if bucket else limit
        fallback_limit = max(1, policy.fallback_limit * limit // policy.limit)  # in the route's proportion
        variant = dataclasses.replace(policy, limit=limit, window_s=window_s, capacity=capacity,
                                      fallback_limit=fallback_limit)
        fallback_capacity = max(fallback_limit, capacity * fallback_limit // limit) if bucket else fallback_limit
        fallback = dataclasses.replace(variant, limit=fallback_limit, capacity=fallback_capacity)
        if len(variants) >= _MAX_VARIANTS:
            variants.clear()
        found = variants[(limit, window_s)] = (variant, fallback)
        return found
