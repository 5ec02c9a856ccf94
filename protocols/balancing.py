"""Choosing a backend for each request: one balancer per route, held by a registry that lives as long as its table."""
from __future__ import annotations

from collections.abc import Callable

from protocols.errors import NoHealthyBackend
from protocols.table import BackendSpec, CompiledRoute, RouteTable


class Balancer:
    """Picks one of a route's backends. Subclasses keep whatever per-route state their strategy needs.

    `pick` returns None when no backend can take the request. `release` is called when an exchange ends, for
    strategies that count (least connections) or measure (latency aware); the default does nothing.
    """

    __slots__ = ("backends",)

    def __init__(self, route: CompiledRoute) -> None:
        self.backends = route.backends

    def pick(self, route: CompiledRoute, client_ip: str) -> BackendSpec | None:
        raise NotImplementedError

    def release(self, backend: BackendSpec, seconds: float, failed: bool) -> None:
        return None


class RoundRobin(Balancer):
    """Each backend in turn."""

    __slots__ = ("_next",)

    def __init__(self, route: CompiledRoute) -> None:
        super().__init__(route)
        self._next = 0

    def pick(self, route: CompiledRoute, client_ip: str) -> BackendSpec | None:
        backends = self.backends
        if not backends:
            return None
        index = self._next
        if index >= len(backends):
            index = 0
        self._next = index + 1
        return backends[index]


# Strategy name (RouteSpec.load_balancing_strategy) -> balancer class. Names not listed yet fall back to round
# robin until their issue lands (weighted, least_connections, random, ip_hash, latency_aware).
STRATEGIES: dict[str, Callable[[CompiledRoute], Balancer]] = {"round_robin": RoundRobin}


class BalancerRegistry:
    """The balancers of one RouteTable, by route id; a new table gets a new registry, so state starts fresh."""

    __slots__ = ("table", "_by_route")

    def __init__(self, table: RouteTable) -> None:
        self.table = table
        self._by_route: dict[int, Balancer] = {}

    def balancer(self, route: CompiledRoute) -> Balancer:
        balancer = self._by_route.get(route.id)
        if balancer is None:
            factory = STRATEGIES.get(route.spec.load_balancing_strategy, RoundRobin)
            balancer = self._by_route[route.id] = factory(route)
        return balancer

    def pick(self, route: CompiledRoute, client_ip: str) -> tuple[Balancer, BackendSpec]:
        """The route's balancer and its choice; NoHealthyBackend when there is none."""
        balancer = self.balancer(route)
        backend = balancer.pick(route, client_ip)
        if backend is None:
            raise NoHealthyBackend(route.name)
        return balancer, backend


class Balancing:
    """Hands out the registry for whichever table is live; swaps it when the table object changes."""

    __slots__ = ("_registry",)

    def __init__(self) -> None:
        self._registry: BalancerRegistry | None = None

    def registry(self, table: RouteTable) -> BalancerRegistry:
        registry = self._registry
        if registry is None or registry.table is not table:
            registry = self._registry = BalancerRegistry(table)
        return registry
