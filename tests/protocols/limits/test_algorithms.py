"""The three algorithms at limit-1, limit and limit+1, refill and burst, and the sliding window's promise,
each on the local store and (when REDIS_URL is set) on Redis through its Lua scripts with the caller's clock."""
from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Iterator

import pytest

from protocols.limits import Decision, LocalStore, RateLimitPolicy, RedisStore

REDIS_URL = os.environ.get("REDIS_URL", "")
T0 = 1_790_000_000.0  # a wall-clock base for the caller's clock


@pytest.fixture(params=["local", pytest.param("redis", marks=[
    pytest.mark.redis, pytest.mark.skipif(not REDIS_URL, reason="needs REDIS_URL (the scaled-out suite)")])])
def store_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


def policy(algorithm: str, limit: int, window_s: float, **extra: object) -> RateLimitPolicy:
    return RateLimitPolicy.from_config({"algorithm": algorithm, "limit": limit, "window_s": window_s, **extra})


def hits(kind: str, p: RateLimitPolicy, offsets: list[float]) -> list[Decision]:
    """One decision per offset (seconds after T0), in order, on one fresh key of a fresh store."""
    key = f"test|{uuid.uuid4().hex}"

    async def scenario() -> list[Decision]:
        store = LocalStore() if kind == "local" else RedisStore(REDIS_URL, prefix="rusta-test:")
        try:
            return [await store.hit(p, key, T0 + offset) for offset in offsets]
        finally:
            if isinstance(store, RedisStore):
                await store.aclose()

    return asyncio.run(scenario())


def allowed(decisions: list[Decision]) -> list[bool]:
    return [d.allowed for d in decisions]


# --- fixed window -------------------------------------------------------------------------------------------

def test_fixed_window_admits_limit_minus_one_with_one_left(store_kind):
    decisions = hits(store_kind, policy("fixed_window", 5, 10), [0, 1, 2, 3])
    assert allowed(decisions) == [True] * 4
    assert [d.remaining for d in decisions] == [4, 3, 2, 1]


def test_fixed_window_admits_exactly_the_limit(store_kind):
    decisions = hits(store_kind, policy("fixed_window", 5, 10), [0, 1, 2, 3, 4])
    assert allowed(decisions) == [True] * 5
    assert decisions[-1].remaining == 0
    assert decisions[-1].reset_s == pytest.approx(6)


def test_fixed_window_rejects_limit_plus_one_until_the_window_ends(store_kind):
    decisions = hits(store_kind, policy("fixed_window", 5, 10), [0, 1, 2, 3, 4, 4.5, 9.999, 10, 10.5])
    assert allowed(decisions) == [True] * 5 + [False, False, True, True]
    assert decisions[5].retry_after_s == pytest.approx(5.5)
    assert decisions[5].remaining == 0
    assert decisions[7].remaining == 4  # a new window opened at t=10


# --- sliding window -----------------------------------------------------------------------------------------

def test_sliding_window_admits_limit_minus_one_and_the_limit(store_kind):
    decisions = hits(store_kind, policy("sliding_window", 5, 10), [0, 1, 2, 3, 4])
    assert allowed(decisions) == [True] * 5
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0]


def test_sliding_window_rejects_limit_plus_one_until_the_oldest_request_leaves(store_kind):
    decisions = hits(store_kind, policy("sliding_window", 5, 10), [0, 1, 2, 3, 4, 5, 9.99, 10, 10.5, 11])
    assert allowed(decisions) == [True] * 5 + [False, False, True, False, True]
    assert decisions[5].retry_after_s == pytest.approx(5)   # t=0 leaves at t=10
    assert decisions[5].reset_s == pytest.approx(9)         # the newest (t=4) leaves at t=14


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sliding_window_never_admits_more_than_the_limit_in_any_window(store_kind, seed):
    rng = random.Random(seed)
    limit, window = 7, 2.0
    offsets: list[float] = []
    t = 0.0
    for _ in range(400):  # bursts and pauses around the window length
        t += rng.choice([0.001, 0.01, 0.05, 0.3, 1.0, 1.999, 2.0])
        offsets.append(round(t, 6))
    decisions = hits(store_kind, policy("sliding_window", limit, window), offsets)
    admitted = [o for o, d in zip(offsets, decisions, strict=True) if d.allowed]
    assert len(admitted) > limit * 5
    for end in admitted:  # the fullest windows end at an admitted request
        assert sum(1 for a in admitted if end - window < a <= end) <= limit
    # and it is not merely stingy: a request is refused only when the window is really full
    for offset, decision in zip(offsets, decisions, strict=True):
        if not decision.allowed:
            assert sum(1 for a in admitted if offset - window < a <= offset) == limit


# --- token bucket -------------------------------------------------------------------------------------------

def test_token_bucket_at_limit_minus_one_limit_and_limit_plus_one(store_kind):
    decisions = hits(store_kind, policy("token_bucket", 5, 10), [0, 0, 0, 0, 0, 0])
    assert allowed(decisions) == [True] * 5 + [False]
    assert [d.remaining for d in decisions] == [4, 3, 2, 1, 0, 0]
    assert decisions[-1].retry_after_s == pytest.approx(2)  # 5 per 10 s: one token every 2 s
    assert decisions[-1].reset_s == pytest.approx(10)


def test_token_bucket_refills_at_its_rate(store_kind):
    decisions = hits(store_kind, policy("token_bucket", 5, 10), [0] * 5 + [1.9, 2.0, 2.1, 6.0, 6.0, 6.0])
    assert allowed(decisions) == [True] * 5 + [False, True, False, True, True, False]


def test_token_bucket_allows_a_burst_then_the_steady_rate(store_kind):
    p = policy("token_bucket", 5, 10, burst=12)
    decisions = hits(store_kind, p, [0] * 13 + [2.0, 2.0] + [100] * 13)
    assert allowed(decisions) == [True] * 12 + [False] + [True, False] + [True] * 12 + [False]
    assert decisions[0].limit == 12 and decisions[0].remaining == 11


def test_token_bucket_never_holds_more_than_its_burst(store_kind):
    decisions = hits(store_kind, policy("token_bucket", 5, 10, burst_allowance=3), [0, 10_000] + [10_000] * 8)
    assert sum(allowed(decisions)) == 1 + 8
