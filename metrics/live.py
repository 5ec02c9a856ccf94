"""Live figures for the admin dashboard: a publisher in each gateway worker and the WebSocket consumer.

The publisher reads the combined figures of all workers (metrics.procfiles) every second and sends them to the
channel-layer group `rusta-metrics-live`; `LiveMetricsConsumer` (at /ws/metrics/live/ on the admin listener)
forwards them to the staff users watching. With the in-memory layer (embedded default) each worker publishes to
its own consumers; with Redis, one worker at a time publishes (a short Redis lease), so nobody gets the figures
twice.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from channels.generic.websocket import AsyncJsonWebsocketConsumer
from redis.exceptions import RedisError

from metrics import procfiles
from metrics.aggregates import Agg
from protocols.recorder import BUCKETS, Totals

log = logging.getLogger(__name__)

GROUP = "rusta-metrics-live"
MESSAGE_TYPE = "metrics.live"
LEASE_KEY = "rusta:metrics:live-publisher"


class LiveFigures:
    """Turns successive combined snapshots into what the dashboard shows: totals, rates and recent latency, for
    the whole gateway and for each route (a route's page shows its own figures, `route_figures`)."""

    def __init__(self) -> None:
        self.previous: tuple[float, Totals] | None = None

    def update(self, combined: procfiles.Combined, now: float) -> dict[str, Any]:
        totals = combined.totals
        counts = _counts(totals)
        requests = sum(route_requests for route_requests, _ in counts.values())
        errors = sum(route_errors for _, route_errors in counts.values())
        then, before = self.previous if self.previous is not None else (now, None)
        self.previous = (now, totals)
        elapsed = max(now - then, 1e-6)
        before_counts = _counts(before) if before is not None else {}
        recent = Agg()
        route_figures: dict[str, dict[str, Any]] = {}
        for route in sorted(set(counts) | set(totals.request_seconds)):
            route_requests, route_errors = counts.get(route, (0, 0))
            old_requests, old_errors = before_counts.get(route, (0, 0))
            latency = _recent_latency(totals, before, route)
            recent.merge(latency)
            route_figures[route] = {
                "requests_total": route_requests, "errors_5xx_total": route_errors,
                "requests_per_second": _rate(route_requests - old_requests, elapsed, before),
                "errors_per_second": _rate(route_errors - old_errors, elapsed, before),
                "p95_seconds": latency.quantile(0.95),
            }
        before_requests = sum(value for value, _ in before_counts.values())
        before_errors = sum(value for _, value in before_counts.values())
        return {
            "at": now, "workers": combined.workers, "requests_total": requests, "errors_5xx_total": errors,
            "requests_per_second": _rate(requests - before_requests, elapsed, before),
            "errors_per_second": _rate(errors - before_errors, elapsed, before),
            "p95_seconds": recent.quantile(0.95), "connections_active": totals.connections_active,
            "connections_peak": totals.connections_peak,
            "routes": {route: figures["requests_total"] for route, figures in route_figures.items()},
            "route_figures": route_figures,
            "breakers": [{"route": route, "backend": backend, "state": state}
                         for (route, backend), state in sorted(combined.breakers.items())],
        }


def _counts(totals: Totals) -> dict[str, tuple[int, int]]:
    """Requests and 5xx answers so far, per route."""
    counts: dict[str, tuple[int, int]] = {}
    for (route, _method, status_class), value in totals.requests.items():
        requests, errors = counts.get(route, (0, 0))
        counts[route] = (requests + value, errors + (value if status_class == "5xx" else 0))
    return counts


def _rate(increase: int, elapsed: float, before: Totals | None) -> float:
    """Per second since the previous snapshot; 0 for the first one (nothing to compare with yet)."""
    return round(max(0, increase) / elapsed, 2) if before is not None else 0.0


def _recent_latency(totals: Totals, before: Totals | None, route: str) -> Agg:
    """The route's latency histogram since the previous snapshot (empty for the first one)."""
    recent = Agg()
    if before is None:
        return recent
    histogram = totals.request_seconds.get(route, [0] * (BUCKETS + 1))
    old = before.request_seconds.get(route, [0] * (BUCKETS + 1))
    for index in range(BUCKETS):
        recent.buckets[index] = max(0, int(histogram[index] - old[index]))
    return recent


class LivePublisher:
    """Publishes the live figures every `interval` seconds from a worker's event loop (see the docstring)."""

    def __init__(self, folder: Path, *, interval: float = 1.0, redis_url: str = "",
                 clock: Callable[[], float] = time.time) -> None:
        self.folder = folder
        self.interval = interval
        self.redis_url = redis_url
        self.clock = clock
        self.figures = LiveFigures()
        self._task: asyncio.Task[None] | None = None
        self._redis: Any = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        from channels.layers import get_channel_layer

        layer = get_channel_layer()
        while True:
            await asyncio.sleep(self.interval - (self.clock() % self.interval) + 0.05)
            try:
                if not await asyncio.to_thread(self._leading):
                    continue
                combined = await asyncio.to_thread(procfiles.combined, self.folder)
                payload = self.figures.update(combined, self.clock())
                await layer.group_send(GROUP, {"type": MESSAGE_TYPE, "figures": payload})
            except (OSError, RedisError) as exc:
                log.warning("live metrics not published: %s", exc)

    def _leading(self) -> bool:
        """Whether this worker publishes this round (always on the in-memory layer)."""
        if not self.redis_url:
            return True
        if self._redis is None:
            from metrics.history import redis_client

            self._redis = redis_client(self.redis_url)
        me = str(os.getpid()).encode()
        lease_ms = int(self.interval * 2500)
        if self._redis.set(LEASE_KEY, me, nx=True, px=lease_ms):
            return True
        if self._redis.get(LEASE_KEY) == me:
            self._redis.pexpire(LEASE_KEY, lease_ms)
            return True
        return False


class LiveMetricsConsumer(AsyncJsonWebsocketConsumer):
    """Sends the live figures to a staff user's dashboard.

    It relies on AuthMiddlewareStack having put the session's user in `scope["user"]` before `connect`; anyone
    else is refused with close code 4403 before the handshake completes. It never touches the database itself.
    """

    async def connect(self) -> None:
        user = self.scope.get("user")
        if not (user is not None and user.is_authenticated and user.is_active and user.is_staff):
            await self.close(code=4403)
            return
        await self.channel_layer.group_add(GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(GROUP, self.channel_name)

    async def metrics_live(self, event: dict[str, Any]) -> None:
        await self.send_json(event["figures"])
