"""What this process knows about each backend of each route: in-flight count, latency, errors, circuit breaker.

Keyed by (route id, backend URL), not by backend id: the control plane may give an unchanged backend a new row
(and id) on every save, and an edit of a route must not reset the breakers or statistics of the backends it
kept. The board outlives route tables; each new table prunes the entries it no longer names.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping

from protocols import breakers
from protocols.breakers import CLOSED, BreakerSnapshot, CircuitBreaker
from protocols.resilience import BreakerPolicy, RetryPolicy
from protocols.retries import RetryBudget
from protocols.table import BackendSpec, RouteTable

Clock = Callable[[], float]


class BackendState:
    """One backend of one route as seen from this process. `spec` is the newest table's BackendSpec."""

    __slots__ = ("route", "url", "spec", "breaker", "in_flight", "started_sum", "ewma", "ewma_at", "fails",
                 "outcomes", "outcomes_at")

    def __init__(self, route: str, spec: BackendSpec, breaker: CircuitBreaker) -> None:
        self.route = route
        self.url = spec.url
        self.spec = spec
        self.breaker = breaker
        self.in_flight = 0
        self.started_sum = 0.0  # sum of the start times of the requests in flight: their mean age, cheaply
        # Statistics kept by the latency-aware balancer only (seconds, clock readings, decayed counts).
        self.ewma = 0.0
        self.ewma_at = 0.0
        self.fails = 0.0
        self.outcomes = 0.0
        self.outcomes_at = 0.0

    def __repr__(self) -> str:
        return f"<BackendState {self.route} {self.url} {self.breaker.state} in_flight={self.in_flight}>"


class BackendBoard:
    """Every BackendState and retry budget of one ProxyApp, with the clock they all read.

    `not_closed` counts breakers that are open or half-open, so the common case (all closed) costs the
    balancer one integer test per request instead of a look at every backend.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.states: dict[tuple[int, str], BackendState] = {}
        self.budgets: dict[int, RetryBudget] = {}
        self.not_closed = 0
        breakers.register(self)

    def state(self, route_id: int, route_name: str, spec: BackendSpec, policy: BreakerPolicy) -> BackendState:
        """The state of this backend of this route, created on first sight, updated to the newest table."""
        key = (route_id, spec.url)
        state = self.states.get(key)
        if state is None:
            state = self.states[key] = BackendState(route_name, spec, CircuitBreaker(policy, self, self.clock()))
        else:
            state.route = route_name
            state.spec = spec
            state.breaker.configure(policy, self.clock())
        return state

    def budget(self, route_id: int, policy: RetryPolicy) -> RetryBudget:
        budget = self.budgets.get(route_id)
        if budget is None or not budget.fits(policy):
            budget = self.budgets[route_id] = RetryBudget(policy, self.clock())
        return budget

    def retain(self, table: RouteTable, backends: Mapping[int, tuple[BackendSpec, ...]] | None = None) -> None:
        """Forget routes and backends the new table no longer has. `backends` replaces, by route id, the backends
        a route has (its discovered addresses, protocols.discovery): one that went away is forgotten here while
        requests still in flight on it keep its state until they finish."""
        chosen = backends or {}
        keep = {(route.id, backend.url) for route in table.routes
                for backend in chosen.get(route.id, route.backends)}
        for key in [key for key in self.states if key not in keep]:
            state = self.states.pop(key)
            if state.breaker.state is not CLOSED:
                self.not_closed -= 1
            state.breaker.listener = None  # late outcomes of its requests must not move our count
        ids = set(table.by_id)
        for route_id in [route_id for route_id in self.budgets if route_id not in ids]:
            del self.budgets[route_id]

    def breaker_moved(self, closed: bool) -> None:
        self.not_closed += -1 if closed else 1

    def breaker_rows(self) -> Iterator[BreakerSnapshot]:
        # opened_at is on our (monotonic, injectable) clock; the snapshot gives it as wall-clock time.
        offset = time.time() - self.clock()
        for state in list(self.states.values()):
            breaker = state.breaker
            opened_at = None if breaker.opened_at is None else breaker.opened_at + offset
            yield BreakerSnapshot(state.route, state.url, breaker.state, breaker.failures, opened_at)
