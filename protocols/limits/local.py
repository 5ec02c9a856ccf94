"""LocalStore: the in-process counters (the embedded default, and the fallback while Redis is away)."""
from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from protocols.limits.config import FIXED_WINDOW, SLIDING_WINDOW, RateLimitPolicy
from protocols.limits.decision import Decision

# A token that is 1e-9 short of whole because of float arithmetic is whole.
_EPSILON = 1e-9


class LocalStore:
    """Counters in this process's memory, at most `max_keys` of them (least recently hit evicted first).

    Memory: about 200 bytes per key for fixed windows and token buckets; a sliding window keeps one
    timestamp per admitted request in the window (up to `limit` floats per key). Evicting a key forgets its
    count, so under a flood of distinct keys (many addresses) an evicted client starts afresh: the bound
    protects the process, not the accuracy of the oldest keys. `clock` is monotonic: only differences count.
    One store may serve many policies; each policy's keys carry its namespace.
    """

    def __init__(self, max_keys: int = 65_536, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self.clock = clock
        self._entries: OrderedDict[str, Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def hit(self, policy: RateLimitPolicy, key: str, now: float | None = None) -> Decision:
        return self.decide(policy, key, self.clock() if now is None else now)

    def decide(self, policy: RateLimitPolicy, key: str, now: float) -> Decision:
        """The same as `hit`, synchronously (nothing here waits)."""
        entries = self._entries
        state = entries.get(key)
        if state is None:
            if len(entries) >= self.max_keys:
                entries.popitem(last=False)
        else:
            entries.move_to_end(key)
        if policy.algorithm == FIXED_WINDOW:
            decision, state = _fixed(policy, state, now)
        elif policy.algorithm == SLIDING_WINDOW:
            decision, state = _sliding(policy, state, now)
        else:
            decision, state = _bucket(policy, state, now)
        entries[key] = state
        return decision


def _fixed(policy: RateLimitPolicy, state: list[float] | None, now: float) -> tuple[Decision, list[float]]:
    """A window opens at a key's first request and lasts window_s; `limit` requests fit in it."""
    if state is None or now >= state[0] + policy.window_s:
        state = [now, 0]
    reset = state[0] + policy.window_s - now
    if state[1] < policy.limit:
        state[1] += 1
        return Decision(True, policy.limit, policy.limit - int(state[1]), reset), state
    return Decision(False, policy.limit, 0, reset, reset), state


def _sliding(policy: RateLimitPolicy, state: deque[float] | None, now: float) -> tuple[Decision, deque[float]]:
    """A sliding log: a request is admitted when fewer than `limit` were admitted in (now - window_s, now]."""
    log = state if state is not None else deque()
    cutoff = now - policy.window_s
    while log and log[0] <= cutoff:
        log.popleft()
    if len(log) < policy.limit:
        log.append(now)
        return Decision(True, policy.limit, policy.limit - len(log), log[-1] + policy.window_s - now), log
    return Decision(False, policy.limit, 0, log[-1] + policy.window_s - now, log[0] + policy.window_s - now), log


def _bucket(policy: RateLimitPolicy, state: list[float] | None, now: float) -> tuple[Decision, list[float]]:
    """A bucket of `capacity` tokens, full at first, refilled at limit/window_s per second; a request takes one."""
    capacity = policy.capacity
    rate = policy.rate
    if state is None:
        state = [float(capacity), now]
    elif now > state[1]:
        state[0] = min(capacity, state[0] + (now - state[1]) * rate)
        state[1] = now
    tokens = state[0]
    if tokens >= 1 - _EPSILON:
        tokens = state[0] = max(0.0, tokens - 1)
        return Decision(True, capacity, math.floor(tokens + _EPSILON), (capacity - tokens) / rate), state
    return Decision(False, capacity, 0, (capacity - tokens) / rate, (1 - tokens) / rate), state
