"""`latency_aware`: peak-EWMA latency with power-of-two-choices, weighing latency, load and recent errors.

Each pick draws two usable backends at random and sends the request to the cheaper one, where

    cost = (latency + 0.1 ms) x (in-flight + 1) x (1 + ERROR_PENALTY x recent failure ratio)

`latency` is a peak EWMA of the time to the response head: a slower sample replaces it at once, faster ones
pull it down gradually, and without samples it decays towards zero over LATENCY_DECAY_S (so a backend that
was slow once is tried again later). While requests are in flight, their mean age counts as a sample too: a
backend that has stopped answering looks slower with every passing millisecond, before any answer arrives.
The failure ratio is over decayed counts (about the last ERROR_DECAY_S seconds). Drawing two rather than
taking the global minimum keeps a crowd of requests from stampeding onto the backend that just looked best.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from math import exp

from protocols.balancing.base import Balancer
from protocols.balancing.state import BackendState, Clock

LATENCY_DECAY_S = 5.0
ERROR_DECAY_S = 3.0
ERROR_PENALTY = 10.0  # a backend failing everything looks 11 times as expensive
FLOOR_S = 0.0001  # so that load still counts between backends that have not been measured yet


class LatencyAware(Balancer):
    """Power of two choices over peak-EWMA cost."""

    __slots__ = ("_clock", "_random")
    observes = True

    def __init__(self, states: tuple[BackendState, ...], clock: Clock) -> None:
        super().__init__(states, clock)
        self._clock = clock
        self._random = random.Random()

    def pick(self, usable: Sequence[BackendState], client: str) -> BackendState:
        count = len(usable)
        if count == 1:
            return usable[0]
        randrange = self._random.randrange
        first = randrange(count)
        second = randrange(count - 1)
        if second >= first:
            second += 1
        a, b = usable[first], usable[second]
        now = self._clock()
        return a if cost(a, now) <= cost(b, now) else b

    def observe(self, state: BackendState, now: float, seconds: float, failed: bool) -> None:
        elapsed = now - state.ewma_at
        weight = exp(-elapsed / LATENCY_DECAY_S) if elapsed > 0 else 1.0
        if seconds > state.ewma:
            state.ewma = seconds  # the peak: a slowdown shows at once
        else:
            state.ewma = state.ewma * weight + seconds * (1.0 - weight)
        state.ewma_at = now
        elapsed = now - state.outcomes_at
        keep = exp(-elapsed / ERROR_DECAY_S) if elapsed > 0 else 1.0
        state.outcomes = state.outcomes * keep + 1.0
        state.fails = state.fails * keep + (1.0 if failed else 0.0)
        state.outcomes_at = now


def cost(state: BackendState, now: float) -> float:
    """The expected price of one more request on this backend now (lower is better)."""
    latency = state.ewma
    if latency:
        latency *= exp(-(now - state.ewma_at) / LATENCY_DECAY_S)
    in_flight = state.in_flight
    if in_flight:
        age = now - state.started_sum / in_flight
        if age > latency:
            latency = age
    price = (latency + FLOOR_S) * (in_flight + 1)
    if state.fails:
        price *= 1.0 + ERROR_PENALTY * state.fails / state.outcomes
    return price
