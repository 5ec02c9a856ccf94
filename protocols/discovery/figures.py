"""What backend discovery did in this process, for /metrics: every live BackendDiscovery merged into one document.

The metrics flusher (metrics.flusher) calls `snapshot()` on the event loop once a second; metrics.procfiles writes
it with the worker's other figures and adds it up over the workers (counters summed, gauges the largest). Its
shape (lists of rows, so that it survives JSON):

    lookups  [[route, name, outcome, count]]   resolutions by outcome: ok, nxdomain, empty, timeout, error
    names    [[route, name, addresses, changed_at, resolved_at]]   addresses in use now; when they last
             changed and when the name last resolved (epoch seconds, null: not yet)
"""
from __future__ import annotations

import time
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from protocols.discovery.backends import BackendDiscovery

# The discoveries of this process (one per data plane); weak, so a closed data plane's goes with it.
_DISCOVERIES: weakref.WeakSet[BackendDiscovery] = weakref.WeakSet()


def register(discovery: BackendDiscovery) -> None:
    """Include `discovery` in this process's snapshot (BackendDiscovery does it when it is built)."""
    _DISCOVERIES.add(discovery)


def empty() -> dict[str, Any]:
    """The snapshot of a process that discovers nothing."""
    return {"lookups": [], "names": []}


def snapshot(discoveries: Iterable[BackendDiscovery] | None = None, now: float | None = None) -> dict[str, Any]:
    """Every registered discovery merged (the module docstring's shape); `now` is the wall clock (epoch s)."""
    wall = time.time() if now is None else now
    lookups: dict[tuple[str, str, str], int] = {}
    names: dict[tuple[str, str], list[Any]] = {}
    for discovery in list(_DISCOVERIES if discoveries is None else discoveries):
        for key, count in discovery.lookups.items():
            lookups[key] = lookups.get(key, 0) + count
        offset = wall - discovery.clock()  # the discovery's clock is monotonic: its times become epoch seconds
        for target, status, endpoints in discovery.report():
            addresses = len({(endpoint.address, endpoint.port) for endpoint in endpoints})
            changed = None if status.changed_at is None else status.changed_at + offset
            resolved = None if status.resolved_at is None else status.resolved_at + offset
            for route in discovery.routes_of(target):
                row = names.get((route, target.name))
                names[(route, target.name)] = [addresses, changed, resolved] if row is None else [
                    max(row[0], addresses), latest(row[1], changed), latest(row[2], resolved)]
    return {
        "lookups": [[*key, count] for key, count in sorted(lookups.items())],
        "names": [[*key, *row] for key, row in sorted(names.items())],
    }


def latest(left: float | None, right: float | None) -> float | None:
    """The later of two times, either of which may be unknown (None)."""
    if left is None:
        return right
    if right is None:
        return left
    return max(left, right)
