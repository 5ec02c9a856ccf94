"""`ip_hash`: consistent hashing of the client address on a ring of virtual nodes, weights respected.

Each backend owns points on a 64-bit ring, placed by hashing its URL and a point number, so where a backend's
points sit never depends on which other backends exist: adding or removing one of N backends moves only the
clients whose point changes owner, about 1/N of them, and none between the backends that stayed. A client
whose backend is unusable goes to the next usable owner clockwise, and comes back when it recovers.
"""
from __future__ import annotations

from bisect import bisect
from collections.abc import Sequence
from hashlib import blake2b

from protocols.balancing.base import Balancer, weights_of
from protocols.balancing.state import BackendState, Clock

POINTS_PER_WEIGHT = 160  # virtual nodes per unit of weight: each backend's share within a few % of its weight
MAX_POINTS = 16_384  # weights are scaled down past this, so a ring stays cheap to build and to search


def ring_hash(text: str) -> int:
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big")


class IpHash(Balancer):
    """The same client address keeps reaching the same backend while it stays usable."""

    __slots__ = ("_points", "_owners")

    def __init__(self, states: tuple[BackendState, ...], clock: Clock) -> None:
        super().__init__(states, clock)
        weights = weights_of(states)
        scale = min(1.0, MAX_POINTS / (POINTS_PER_WEIGHT * max(sum(weights), 1)))
        ring: list[tuple[int, int]] = []
        for index, (state, weight) in enumerate(zip(states, weights, strict=True)):
            count = max(1, round(weight * POINTS_PER_WEIGHT * scale)) if weight else 0
            ring += ((ring_hash(f"{state.url}#{point}"), index) for point in range(count))
        ring.sort()
        self._points = [point for point, _ in ring]
        self._owners = [owner for _, owner in ring]

    def pick(self, usable: Sequence[BackendState], client: str) -> BackendState:
        points = self._points
        if not points:
            return usable[0]
        position = bisect(points, ring_hash(client))
        count = len(points)
        if position == count:
            position = 0
        states, owners = self.states, self._owners
        if usable is states:
            return states[owners[position]]
        allowed = {id(state) for state in usable}
        for step in range(count):
            state = states[owners[(position + step) % count]]
            if id(state) in allowed:
                return state
        # Only zero-weight backends (which own no points) are usable: spread the clients over them.
        return usable[ring_hash(client) % len(usable)]
