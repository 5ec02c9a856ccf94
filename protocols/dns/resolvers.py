"""The upstream resolvers: read from the route table's dns routes, balanced round robin, failed ones skipped."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from protocols.table import RouteTable


@dataclass(frozen=True, slots=True)
class Resolver:
    """One upstream resolver: a backend of an enabled `protocol: dns` route."""

    host: str
    port: int = 53
    weight: int = 1
    backend_id: int = 0
    route: str = ""

    @property
    def key(self) -> tuple[str, int]:
        return (self.host.lower(), self.port)

    @property
    def label(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def resolvers_from_table(table: RouteTable) -> tuple[Resolver, ...]:
    """Every backend (scheme "dns") of every dns route in the table, once each, in route then backend order.

    The table holds enabled routes and enabled backends only (routes/snapshot.py); routes are taken by
    descending priority, then in creation order, so that the first configured resolver comes first.
    """
    routes = sorted((r.spec for r in table.routes if r.protocol == "dns"), key=lambda s: (-s.priority, s.order))
    seen: set[tuple[str, int]] = set()
    found = []
    for spec in routes:
        for backend in spec.backends:
            if backend.scheme != "dns":
                continue
            resolver = Resolver(backend.host, backend.port, max(1, backend.weight), backend.id, spec.name)
            if resolver.key not in seen:
                seen.add(resolver.key)
                found.append(resolver)
    return tuple(found)


class ResolverPool:
    """Chooses the order in which resolvers are tried for one query.

    Healthy resolvers take turns by smooth weighted round robin (equal weights: plain round robin); the chosen
    one is tried first, the other healthy ones next, and those that timed out or refused recently
    (`hold_down` seconds) last, so that a query still gets an answer when every resolver is marked down.
    A backend that the active health overlay marks down counts as failed.
    """

    def __init__(self, hold_down: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.hold_down = hold_down
        self.clock = clock
        self._down_until: dict[tuple[str, int], float] = {}
        self._current: dict[tuple[str, int], int] = {}

    def order(self, resolvers: Iterable[Resolver], health: Mapping[int, bool] | None = None) -> list[Resolver]:
        now = self.clock()
        up: list[Resolver] = []
        down: list[Resolver] = []
        for resolver in resolvers:
            healthy = health is None or health.get(resolver.backend_id, True)
            (up if healthy and self._down_until.get(resolver.key, 0.0) <= now else down).append(resolver)
        down.sort(key=lambda r: self._down_until.get(r.key, 0.0))
        if not up:
            return down
        first = self._pick(up)
        return [first, *(r for r in up if r is not first), *down]

    def mark_failed(self, resolver: Resolver) -> None:
        self._down_until[resolver.key] = self.clock() + self.hold_down

    def mark_ok(self, resolver: Resolver) -> None:
        self._down_until.pop(resolver.key, None)

    def is_down(self, resolver: Resolver) -> bool:
        return self._down_until.get(resolver.key, 0.0) > self.clock()

    def _pick(self, up: list[Resolver]) -> Resolver:
        if len(up) == 1:
            return up[0]
        total = 0
        best: Resolver | None = None
        for resolver in up:
            current = self._current.get(resolver.key, 0) + resolver.weight
            self._current[resolver.key] = current
            total += resolver.weight
            if best is None or current > self._current[best.key]:
                best = resolver
        assert best is not None
        self._current[best.key] -= total
        return best
