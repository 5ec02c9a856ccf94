"""Backends found by DNS: what each discovered name resolved to (`Discovered`, immutable, replaced whole when an
answer changes) and the per-data-plane task that re-resolves every name on its interval (`BackendDiscovery`).

Resolution never happens on the request path: the task runs on the data plane's event loop, and a change is
published by building a new plan (protocols.plan) from the new `Discovered`, in one assignment. An answer that
fails, times out or comes back empty keeps the last addresses known, so a DNS hiccup never leaves a backend with
none; it is logged when the failures start and when they end, and counted per route and name (`lookups`, which
protocols.discovery.figures hands to /metrics with `report`).

A discovered https address keeps the DNS name it was found under as its `server_name` (the backend's host for
`a`, the SRV target for `srv`): TLS sends and verifies that name, and the Host field defaults to it.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

from protocols.discovery import figures
from protocols.discovery.config import nameserver_text
from protocols.discovery.lookup import DiscoveryError, DnsLookup, Lookup, Nameserver
from protocols.guards.egress import is_link_local_address
from protocols.table import BackendSpec, CompiledRoute, RouteTable

log = logging.getLogger(__name__)

MAX_TIMEOUT_S = 5.0  # one resolution's limit, and its interval's when that is shorter (but at least MIN_TIMEOUT_S)
MIN_TIMEOUT_S = 1.0
MIN_SLEEP_S = 0.05  # between two looks at what is due, so that a clock that stands still cannot spin the task
MAX_SLEEP_S = 60.0


class Target(NamedTuple):
    """One name to resolve: how, what, and where to ask (None: the system's resolver)."""

    kind: str
    name: str
    resolver: Nameserver | None

    def __str__(self) -> str:
        where = f" at {nameserver_text(self.resolver)}" if self.resolver is not None else ""
        return f"{self.kind} {self.name}{where}"


class Endpoint(NamedTuple):
    """One address a name resolved to. `port` 0 and `weight` -1 (an `a` answer): the backend's own; `name` the
    SRV target the address belongs to ("" for an `a` answer: the backend's host)."""

    address: str
    port: int = 0
    weight: int = -1
    name: str = ""


def target_of(backend: BackendSpec) -> Target | None:
    discovery = backend.discovery
    if discovery is None:
        return None
    return Target(discovery.kind, backend.host.rstrip(".").lower(), discovery.resolver)


class Discovered:
    """What every discovered name resolved to, by Target; never changed once built."""

    __slots__ = ("endpoints",)

    def __init__(self, endpoints: Mapping[Target, tuple[Endpoint, ...]]) -> None:
        self.endpoints = endpoints

    def backends(self, route: CompiledRoute) -> tuple[BackendSpec, ...]:
        """The backends the route balances over: each discovered backend replaced by one per address it resolved
        to. Each keeps the backend's id (an operator's health override of the backend covers all its addresses),
        scheme and description; an `a` address takes the backend's port and weight, an SRV one the record's port
        and the backend's weight times the record's. A TLS address is named (`server_name`) by the backend's
        host (`a`) or its SRV target. Before its name first resolves, an `a` backend is reached by its name (as
        a backend without discovery is) and an `srv` backend has no address yet."""
        if not route.discovers:
            return route.backends
        found: dict[str, BackendSpec] = {}
        for backend in route.backends:
            target = target_of(backend)
            endpoints = self.endpoints.get(target) if target is not None else None
            if target is None or endpoints is None:
                if target is None or target.kind == "a":
                    found.setdefault(backend.url, backend)
                continue
            for endpoint in endpoints:
                weight = backend.weight if endpoint.weight < 0 else backend.weight * endpoint.weight
                server_name = (endpoint.name or target.name) if backend.is_tls else ""
                spec = BackendSpec(id=backend.id, scheme=backend.scheme, host=endpoint.address,
                                   port=endpoint.port or backend.port, weight=weight, description=backend.description,
                                   server_name=server_name)
                found.setdefault(spec.url, spec)  # two names of one route may share an address: it is one backend
        return tuple(found.values())


NOTHING_DISCOVERED = Discovered({})


@dataclass
class NameStatus:
    """How one name's resolution goes: `failures` in a row (0: its last answer was good), `errors` since the
    data plane started, the last error's text, when it last resolved and when its addresses last changed (the
    discovery's clock; None: never)."""

    interval_s: float
    due_at: float
    failures: int = 0
    errors: int = 0
    last_error: str = ""
    resolved_at: float | None = None
    changed_at: float | None = None


class BackendDiscovery:
    """The discovered names of one data plane, re-resolved on their intervals by a task on its event loop.

    `follow(table)` is told each table the data plane plans (it starts the task, and wakes it for a name it has
    not resolved yet); `current` is the latest Discovered; `on_change` is called on the loop whenever it
    changes. Addresses that are link-local or cloud metadata endpoints are left out unless `allow_link_local`
    (as the control plane refuses such backends). `lookups` counts resolutions by (route, name, outcome), an
    outcome being "ok" or a DiscoveryError's; a name two routes share is resolved once and counted under both.
    Every instance is in its process's /metrics (protocols.discovery.figures). `lookup` and `clock` are for tests.
    """

    def __init__(self, on_change: Callable[[], None] | None = None, *, lookup: Lookup | None = None,
                 clock: Callable[[], float] = time.monotonic, allow_link_local: bool = False) -> None:
        self.on_change = on_change
        self.lookup: Lookup = lookup or DnsLookup()
        self.clock = clock
        self.allow_link_local = allow_link_local
        self.current = NOTHING_DISCOVERED
        self.lookups: dict[tuple[str, str, str], int] = {}
        self._names: dict[Target, NameStatus] = {}
        self._routes: dict[Target, tuple[str, ...]] = {}  # the names of the routes that discover each name
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        figures.register(self)

    def follow(self, table: RouteTable) -> bool:
        """Resolve the names `table` discovers from now on (and forget the others). False when it has some and no
        event loop runs here to start the task on: the plan built now would never see them resolved."""
        wanted: dict[Target, float] = {}
        routes: dict[Target, dict[str, None]] = {}
        for route in table.routes:
            if route.discovers:
                for backend in route.backends:
                    target = target_of(backend)
                    if target is not None and backend.discovery is not None:
                        wanted[target] = min(wanted.get(target, backend.discovery.interval_s),
                                             backend.discovery.interval_s)
                        routes.setdefault(target, {})[route.name] = None
        self._routes = {target: tuple(names) for target, names in routes.items()}
        names = self._names
        for target in [target for target in names if target not in wanted]:
            del names[target]
        if any(target not in wanted for target in self.current.endpoints):
            self.current = Discovered({t: e for t, e in self.current.endpoints.items() if t in wanted})
        now = self.clock()
        new = False
        for target, interval in wanted.items():
            status = names.get(target)
            if status is None:
                names[target] = NameStatus(interval, due_at=now)
                new = True
            elif status.interval_s != interval:
                status.due_at = min(status.due_at, now + interval)
                status.interval_s = interval
        if not wanted:
            return True
        running = self._start()
        if new:
            self._wake_up()
        return running

    async def refresh(self) -> bool:
        """Resolve every name that is due, at once; True when `current` changed (`on_change` is not called)."""
        now = self.clock()
        due = [(target, status) for target, status in self._names.items() if status.due_at <= now]
        if not due:
            return False
        outcomes = await asyncio.gather(*(self._resolve(target, status.interval_s) for target, status in due))
        now = self.clock()
        endpoints = dict(self.current.endpoints)
        changed = False
        for (target, status), outcome in zip(due, outcomes, strict=True):
            if self._names.get(target) is not status:
                continue  # the name was forgotten while it resolved
            status.due_at = now + status.interval_s
            self._count(target, outcome.outcome if isinstance(outcome, DiscoveryError) else "ok")
            if isinstance(outcome, DiscoveryError):
                self._failed(target, status, outcome, endpoints.get(target))
                continue
            if status.failures:
                log.info("discovery of %s answers again after %d failures", target, status.failures)
            status.failures, status.resolved_at = 0, now
            before = endpoints.get(target)
            if before != outcome:
                log.info("discovery of %s: %s (was %s)", target, _listed(outcome),
                         "unresolved" if before is None else _listed(before))
                endpoints[target] = outcome
                status.changed_at = now
                changed = True
        if changed:
            self.current = Discovered(endpoints)
        return changed

    def report(self) -> list[tuple[Target, NameStatus, tuple[Endpoint, ...]]]:
        """Each name with how its resolution goes and the addresses in use (for metrics and the operator)."""
        return [(target, replace(status), self.current.endpoints.get(target, ()))
                for target, status in self._names.items()]

    def routes_of(self, target: Target) -> tuple[str, ...]:
        """The names of the routes of the table followed now that discover `target`."""
        return self._routes.get(target, ())

    async def run(self) -> None:
        """Refresh whatever is due, then sleep until the next name is due or `follow` brings a new one."""
        wake = self._wake
        assert wake is not None, "started by _start"
        while True:
            wake.clear()
            try:
                if await self.refresh() and self.on_change is not None:
                    self.on_change()
            except Exception:  # the last resort: discovery keeps running, with the addresses it has
                log.exception("backend discovery failed unexpectedly; the backends keep their addresses")
            try:
                await asyncio.wait_for(wake.wait(), self._sleep())
            except TimeoutError:
                pass  # something is due

    async def aclose(self) -> None:
        """Stop the task (at shutdown)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    # --- helpers -------------------------------------------------------------------------------------------

    def _start(self) -> bool:
        """Start the task on the running loop unless it runs; whether it runs."""
        if self._task is not None and not self._task.done():
            return True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        self._wake = asyncio.Event()
        self._task = loop.create_task(self.run(), name="rusta-backend-discovery")
        return True

    def _count(self, target: Target, outcome: str) -> None:
        lookups = self.lookups
        for route in self._routes.get(target, ()):
            key = (route, target.name, outcome)
            lookups[key] = lookups.get(key, 0) + 1

    def _wake_up(self) -> None:
        task, wake = self._task, self._wake
        if task is None or task.done() or wake is None:
            return
        try:
            task.get_loop().call_soon_threadsafe(wake.set)  # follow() may run on another thread than the task
        except RuntimeError:
            log.debug("backend discovery's loop is closed; nothing to wake")

    def _sleep(self) -> float:
        if not self._names:
            return MAX_SLEEP_S
        until = min(status.due_at for status in self._names.values()) - self.clock()
        return min(MAX_SLEEP_S, max(MIN_SLEEP_S, until))

    async def _resolve(self, target: Target, interval: float) -> tuple[Endpoint, ...] | DiscoveryError:
        timeout = min(MAX_TIMEOUT_S, max(MIN_TIMEOUT_S, interval))
        try:
            return await asyncio.wait_for(self._endpoints(target, timeout), timeout)
        except TimeoutError:
            return DiscoveryError(f"no answer within {timeout:g} s", "timeout")
        except DiscoveryError as exc:
            return exc

    async def _endpoints(self, target: Target, timeout: float) -> tuple[Endpoint, ...]:
        if target.kind == "a":
            found = {Endpoint(address) for address in await self._addresses(target.name, target.resolver, timeout)}
        else:
            services = [service for service in await self.lookup.services(target.name, target.resolver, timeout)
                        if service.target not in ("", ".")]  # "." says the service is not offered there
            if not services:
                raise DiscoveryError("no SRV records", "empty")
            first = min(service.priority for service in services)  # backups (higher priorities) are not used
            chosen = [service for service in services if service.priority == first]
            names = sorted({service.target for service in chosen})
            addresses = await asyncio.gather(*(self._addresses(name, target.resolver, timeout) for name in names))
            by_name = dict(zip(names, addresses, strict=True))
            found = {Endpoint(address, service.port, service.weight, service.target.rstrip(".").lower())
                     for service in chosen for address in by_name[service.target]}
        if not found:
            raise DiscoveryError("no addresses", "empty")
        return tuple(sorted(found))

    async def _addresses(self, name: str, resolver: Nameserver | None, timeout: float) -> list[str]:
        kept: list[str] = []
        for text in await self.lookup.addresses(name, resolver, timeout):
            try:
                address = ipaddress.ip_address(text.split("%", 1)[0])
            except ValueError:
                continue
            if self.allow_link_local or not is_link_local_address(address):
                kept.append(str(address))
        if not kept:
            raise DiscoveryError(f"{name} has no usable address", "empty")
        return kept

    def _failed(self, target: Target, status: NameStatus, error: DiscoveryError,
                known: tuple[Endpoint, ...] | None) -> None:
        status.failures += 1
        status.errors += 1
        status.last_error = str(error)
        if status.failures == 1:
            kept = f"keeping its {len(known)} last known addresses" if known else "it has no addresses yet"
            log.warning("discovery of %s failed (%s); %s", target, error, kept)


def _listed(endpoints: tuple[Endpoint, ...]) -> str:
    return ", ".join(f"{e.address}:{e.port}" if e.port else e.address for e in endpoints)
