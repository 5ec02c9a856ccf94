"""Limiter over a store that fails, the response headers and 429 of a decision, and the local store's bound."""
from __future__ import annotations

import asyncio
import json

from protocols.limits import (
    Decision,
    Limiter,
    LocalStore,
    RateLimitPolicy,
    StoreUnavailable,
    limit_key,
    strictest,
)


class DownStore:
    """A shared store that is never there."""

    def __init__(self) -> None:
        self.calls = 0

    async def hit(self, policy: RateLimitPolicy, key: str, now: float | None = None) -> Decision:
        self.calls += 1
        raise StoreUnavailable("connection refused")


def policy(**block: object) -> RateLimitPolicy:
    return RateLimitPolicy.from_config({"algorithm": "fixed_window", "limit": 3, "window_s": 60, **block})


def run_hits(limiter: Limiter, count: int, key: str = "k") -> list[Decision]:
    async def scenario() -> list[Decision]:
        return [await limiter.hit(key, now=100.0 + n) for n in range(count)]

    return asyncio.run(scenario())


def test_without_a_store_it_limits_in_process():
    assert [d.allowed for d in run_hits(Limiter(policy()), 4)] == [True, True, True, False]


def test_fail_open_applies_the_same_limit_locally():
    decisions = run_hits(Limiter(policy(), DownStore()), 4)
    assert [(d.allowed, d.degraded) for d in decisions] == [(True, True)] * 3 + [(False, True)]


def test_fail_open_can_use_a_smaller_per_process_limit():
    decisions = run_hits(Limiter(policy(fallback_limit=1), DownStore()), 2)
    assert [d.allowed for d in decisions] == [True, False]


def test_fail_closed_rejects_with_a_short_retry():
    decision = run_hits(Limiter(policy(on_store_error="closed"), DownStore()), 1)[0]
    assert (decision.allowed, decision.degraded, decision.retry_after_s) == (False, True, 1.0)


def test_an_allowed_decision_carries_the_ratelimit_headers():
    decision = Decision(True, 100, 42, 17.2)
    assert decision.headers() == [
        (b"ratelimit-limit", b"100"), (b"ratelimit-remaining", b"42"), (b"ratelimit-reset", b"18")]


def test_a_rejection_adds_retry_after_in_whole_seconds_rounded_up():
    decision = Decision(False, 100, 0, 30.0, 0.2)
    assert decision.headers()[-1] == (b"retry-after", b"1")
    assert Decision(False, 100, 0, 30.0, 12.01).headers()[-1] == (b"retry-after", b"13")


def test_a_rejection_is_a_429_with_a_json_body_and_the_headers():
    status, headers, body = Decision(False, 5, 0, 9.5, 4.5).error("orders").response("req-1")
    assert status == 429
    assert json.loads(body) == {"error": "Too many requests to route 'orders'; retry in 5 s.",
                                "type": "rate_limited", "request_id": "req-1"}
    assert (b"retry-after", b"5") in headers
    assert (b"ratelimit-remaining", b"0") in headers


def test_headers_follow_the_strictest_of_several_policies():
    loose, tight = Decision(True, 100, 90, 60), Decision(True, 10, 2, 5)
    rejected = Decision(False, 10, 0, 5, 3)
    assert strictest([loose, tight]) is tight
    assert strictest([loose, rejected, tight]) is rejected
    assert strictest([]) is None


def test_the_local_store_keeps_at_most_max_keys():
    store = LocalStore(max_keys=100)
    p = policy()
    for n in range(1000):
        store.decide(p, f"client-{n}", 0.0)
    assert len(store) == 100


def test_the_most_recently_hit_keys_survive_eviction():
    store = LocalStore(max_keys=2)
    p = policy(limit=1)
    store.decide(p, "a", 0.0)
    store.decide(p, "b", 0.0)
    store.decide(p, "a", 1.0)  # a is the most recent now
    store.decide(p, "c", 2.0)  # evicts b
    assert not store.decide(p, "a", 3.0).allowed
    assert store.decide(p, "b", 3.0).allowed


def test_per_user_limits_really_limit_each_user():
    p = RateLimitPolicy.from_config({"limit": 2, "scope": "user"}, name="r")
    limiter = Limiter(p)

    async def scenario() -> list[bool]:
        results = []
        for user in ("alice", "alice", "alice", "bob"):
            key = limit_key(p, "orders", "198.51.100.7", user)
            results.append((await limiter.hit(key)).allowed)
        return results

    assert asyncio.run(scenario()) == [True, True, False, True]
