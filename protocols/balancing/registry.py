"""Per-route runtime (balancer, policies, backend states), built once per table, and the pick/release cycle."""
from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from protocols.balancing.base import Balancer, LeastConnections, Random, RoundRobin, SmoothWeighted
from protocols.balancing.hashing import IpHash
from protocols.balancing.latency import LatencyAware
from protocols.balancing.state import BackendBoard, BackendState, Clock
from protocols.breakers import CLOSED, OPEN
from protocols.errors import NoHealthyBackend
from protocols.resilience import ALL_METHODS, breaker_policy, retry_policy
from protocols.table import BackendSpec, CompiledRoute, RouteTable

# Strategy name (RouteSpec.load_balancing_strategy) -> balancer class; an unknown name gets round robin.
STRATEGIES: dict[str, Callable[[tuple[BackendState, ...], Clock], Balancer]] = {
    "round_robin": RoundRobin,
    "weighted": SmoothWeighted,
    "least_connections": LeastConnections,
    "random": Random,
    "ip_hash": IpHash,
    "latency_aware": LatencyAware,
}
# Retry-After when nothing is usable and no breaker says when it will be: backends marked down by the active
# health checks, whose next verdict comes at the route's probe interval at the earliest (this is its default).
UNHEALTHY_RETRY_AFTER = 5
_NO_HEALTH: Mapping[int, bool] = {}


# One attempt on one backend: (state, trial ticket of its breaker, clock reading when it started). A tuple,
# because it is made for every request. Hand it back to `RouteRuntime.release` exactly once.
Lease = tuple[BackendState, int, float]


class RouteRuntime:
    """Everything the proxy needs about one route beyond its spec: balancer, backend states, parsed policies."""

    __slots__ = ("name", "states", "balancer", "retry", "breaker", "budget", "board", "probe_interval",
                 "retryable", "_observes", "_positions")

    def __init__(self, route: CompiledRoute, board: BackendBoard,
                 backends: tuple[BackendSpec, ...] | None = None) -> None:
        spec = route.spec
        self.name = route.name
        self.board = board
        self.retry = retry_policy(route.name, spec.policies)
        self.breaker = breaker_policy(route.name, spec.policies)
        self.states = tuple(board.state(route.id, route.name, backend, self.breaker)
                            for backend in (route.backends if backends is None else backends))
        factory = STRATEGIES.get(spec.load_balancing_strategy, RoundRobin)
        self.balancer = factory(self.states, board.clock)
        self._observes = self.balancer.observes
        self.budget = board.budget(route.id, self.retry)
        self.probe_interval = probe_interval(spec.policies)
        # The methods whose requests may be retried at all under this route's policy.
        self.retryable = frozenset(method for method in ALL_METHODS if self.retry.allows(method))
        self._positions = {id(state): index for index, state in enumerate(self.states)}

    def pick(self, client: str, health: Mapping[int, bool] = _NO_HEALTH,
             tried: Collection[BackendState] = (), preferred: int | None = None) -> Lease:
        """A backend for the next attempt; NoHealthyBackend when none may take it.

        Skips backends the active health checks marked down (`health`: backend id -> healthy) and backends whose
        breaker is open; `tried` (the backends this request already failed on) are avoided while others remain.
        `preferred` (AI routing's choice, a position in `states`) is taken for a first attempt when it may take
        the request; otherwise, and for retries, the balancer picks.
        """
        board = self.board
        now = board.clock()
        if not tried:
            # A client request (retries are not): what the retry budget is a share of. Inlined RollingCounts.add.
            budget = self.budget
            if now >= budget.bucket_end:
                budget.advance(now)
            budget.current += 1
        usable: Sequence[BackendState] = self.states
        if preferred is not None and not tried:
            state = usable[preferred]
            if (not health or health.get(state.spec.id, True)) and state.breaker.available(now):
                trial = state.breaker.acquire() if board.not_closed else 0
                state.in_flight += 1
                state.started_sum += now
                return state, trial, now
        if board.not_closed or health or tried:
            usable = self._usable(health, tried, now)
            if not usable:
                raise self._unavailable(health, now)
            state = usable[0] if len(usable) == 1 else self.balancer.pick(usable, client)
            trial = state.breaker.acquire()
        else:
            count = len(usable)
            if count == 1:
                state = usable[0]  # one backend: nothing to balance
            elif count:
                state = self.balancer.pick(usable, client)
            else:
                raise self._unavailable(health, now)
            trial = 0  # every breaker is closed: no trials
        state.in_flight += 1
        state.started_sum += now
        return state, trial, now

    def release(self, lease: Lease, failed: bool | None, at: float) -> None:
        """The attempt ended: failed, succeeded, or None when the outcome says nothing about the backend
        (the client left). `at` is the clock reading when the response head (or the failure) came."""
        state, trial, started = lease
        state.in_flight -= 1
        if state.in_flight:
            state.started_sum -= started
        else:
            state.started_sum = 0.0  # no rounding error survives an idle moment
        breaker = state.breaker
        if failed is False and breaker.state is CLOSED and not breaker.failures and breaker.window is None:
            pass  # the common case: a success changes nothing on a closed breaker without a failure streak
        else:
            breaker.record(failed, trial, at)
        if self._observes and failed is not None:
            self.balancer.observe(state, at, at - started, failed)

    def position(self, state: BackendState | None) -> int | None:
        """Where `state` is in the route's backends (what `pick`'s `preferred` names); None for None."""
        return None if state is None else self._positions.get(id(state))

    def usable_positions(self, health: Mapping[int, bool]) -> frozenset[int] | None:
        """The positions of the backends that may take a first attempt now (healthy, breaker not open); None
        when all may. Read without touching the breakers (`pick` half-opens one whose time is up, and takes
        its trial)."""
        board = self.board
        if not health and not board.not_closed:
            return None
        now = board.clock()
        return frozenset(index for index, state in enumerate(self.states)
                         if health.get(state.spec.id, True) and not _shut(state, now))

    def has_usable(self, health: Mapping[int, bool], tried: Collection[BackendState] = ()) -> bool:
        """Whether `pick` would find a backend now."""
        return bool(self._usable(health, tried, self.board.clock()))

    def _usable(self, health: Mapping[int, bool], tried: Collection[BackendState], now: float) -> list[BackendState]:
        usable = [state for state in self.states
                  if (not health or health.get(state.spec.id, True)) and state.breaker.available(now)]
        if tried and len(usable) > 1:
            untried = [state for state in usable if state not in tried]
            if untried:
                return untried
        return usable

    def _unavailable(self, health: Mapping[int, bool], now: float) -> NoHealthyBackend:
        states = self.states
        if not states:
            return NoHealthyBackend(self.name)
        unhealthy = [state for state in states if health and not health.get(state.spec.id, True)]
        waits = [state.breaker.retry_in(now) for state in states
                 if state not in unhealthy and state.breaker.state is not CLOSED]
        retry_after = max(1, math.ceil(min(waits))) if waits else self.probe_interval
        return NoHealthyBackend(self.name, retry_after, backends=len(states), unhealthy=len(unhealthy),
                                open_breakers=len(waits))


def _shut(state: BackendState, now: float) -> bool:
    """An open breaker whose time is not up (one whose time is up would take a trial)."""
    breaker = state.breaker
    return breaker.state is OPEN and breaker.opened_at is not None and now - breaker.opened_at < breaker.policy.open_s


def probe_interval(policies: Mapping[str, Any] | None) -> int:
    """Seconds between the route's active health probes (`health_check.interval_s`), as Retry-After."""
    block = (policies or {}).get("health_check")
    interval = block.get("interval_s") if isinstance(block, dict) else None
    if isinstance(interval, int | float) and not isinstance(interval, bool) and interval > 0:
        return max(1, math.ceil(interval))
    return UNHEALTHY_RETRY_AFTER


class Balancing:
    """The route runtimes of each new table, built by the table's plan (protocols.plan): a new table gets new
    balancers (fresh turns), while breakers and statistics live on in the board for every (route, backend URL)
    the new table still has."""

    __slots__ = ("board",)

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.board = BackendBoard(clock)

    def runtimes(self, table: RouteTable, protocols: Collection[str] | None = None,
                 backends: Callable[[CompiledRoute], tuple[BackendSpec, ...]] | None = None) -> dict[int, RouteRuntime]:
        """A runtime for every route of `table` (of these `protocols` only, when given), by route id, over the
        backends `backends` gives for it (by default its own: protocols.discovery gives the addresses its names
        resolved to); the board forgets what they no longer name. Call it once per table and set of backends:
        each call starts fresh balancers."""
        routes = [route for route in table.routes if protocols is None or route.protocol in protocols]
        chosen = {route.id: backends(route) for route in routes} if backends is not None else {}
        self.board.retain(table, chosen)
        return {route.id: RouteRuntime(route, self.board, chosen.get(route.id)) for route in routes}
