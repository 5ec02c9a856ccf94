"""The balancer interface and the simple strategies: round robin, smooth weighted, least connections, random."""
from __future__ import annotations

import random
from bisect import bisect
from collections.abc import Sequence
from itertools import accumulate

from protocols.balancing.state import BackendState, Clock


def weights_of(states: Sequence[BackendState]) -> list[int]:
    """Backend weights, where 0 means "only when nothing else is left": all zero counts as all equal."""
    weights = [max(state.spec.weight, 0) for state in states]
    return weights if any(weights) else [1] * len(weights)


class Balancer:
    """Picks one of a route's backends for each request. One instance per route per table.

    `pick` gets the backends that may take the request (never empty; `usable is self.states` when all may, the
    common case) and returns one of them. Strategies that learn from outcomes set `observes` and get every
    finished exchange through `observe`.
    """

    __slots__ = ("states",)
    observes = False

    def __init__(self, states: tuple[BackendState, ...], clock: Clock) -> None:
        self.states = states

    def pick(self, usable: Sequence[BackendState], client: str) -> BackendState:
        raise NotImplementedError

    def observe(self, state: BackendState, now: float, seconds: float, failed: bool) -> None:
        return None


class RoundRobin(Balancer):
    """Each usable backend in turn."""

    __slots__ = ("_next",)

    def __init__(self, states: tuple[BackendState, ...], clock: Clock) -> None:
        super().__init__(states, clock)
        self._next = 0

    def pick(self, usable: Sequence[BackendState], client: str) -> BackendState:
        index = self._next
        if index >= len(usable):
            index = 0
        self._next = index + 1
        return usable[index]


class SmoothWeighted(Balancer):
    """nginx's smooth weighted round robin: weights 5:1:1 give a a b a c a a, interleaved rather than in runs.

    Each pick adds every usable backend's weight to its running score, takes the highest score and lowers it by
    the total; skipped backends simply do not score, so the interleaving holds on whatever subset is usable.
    """

    __slots__ = ("_weights", "_scores", "_index")

    def __init__(self, states: tuple[BackendState, ...], clock: Clock) -> None:
        super().__init__(states, clock)
        self._weights = weights_of(states)
        self._scores = [0] * len(states)
        self._index = {id(state): i for i, state in enumerate(states)}

    def pick(self, usable: Sequence[BackendState], client: str) -> BackendState:
        weights, scores = self._weights, self._scores
        indices: Sequence[int] = range(len(weights)) if usable is self.states else [
            self._index[id(state)] for state in usable]
        if not any(weights[i] for i in indices):
            weights = [1] * len(weights)  # only zero-weight backends are left: they share equally
        best = -1
        total = 0
        for i in indices:
            weight = weights[i]
            scores[i] += weight
            total += weight
            if best < 0 or scores[i] > scores[best]:
                best = i
        scores[best] -= total
        return self.states[best]


class LeastConnections(Balancer):
    """The backend with the fewest requests in flight from this process; ties go round robin."""

    __slots__ = ("_next",)

    def __init__(self, states: tuple[BackendState, ...], clock: Clock) -> None:
        super().__init__(states, clock)
        self._next = 0

    def pick(self, usable: Sequence[BackendState], client: str) -> BackendState:
        count = len(usable)
        start = self._next % count
        self._next = start + 1
        best = usable[start]
        fewest = best.in_flight
        for offset in range(1, count):
            state = usable[(start + offset) % count]
            if state.in_flight < fewest:
                best, fewest = state, state.in_flight
        return best


class Random(Balancer):
    """A random backend, in proportion to the weights."""

    __slots__ = ("_uniform", "_cumulative", "_random")

    def __init__(self, states: tuple[BackendState, ...], clock: Clock) -> None:
        super().__init__(states, clock)
        weights = weights_of(states)
        self._uniform = len(set(weights)) <= 1
        self._cumulative = list(accumulate(weights))
        self._random = random.Random()

    def pick(self, usable: Sequence[BackendState], client: str) -> BackendState:
        if self._uniform:
            return usable[self._random.randrange(len(usable))]
        cumulative = self._cumulative if usable is self.states else list(accumulate(weights_of(usable)))
        return usable[bisect(cumulative, self._random.random() * cumulative[-1])]
