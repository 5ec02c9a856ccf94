"""Stored traffic for the advice tests: hourly and five-minute rollup rows with the latency histograms a real
gateway would have written, client windows, and the fill markers that say those rollups are complete."""
from __future__ import annotations

import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from metrics.models import ClientWindow, FillState, RollupPoint
from protocols.recorder import BUCKETS, LATENCY_BOUNDS
from routes.models import Route
from routes.services import save_route

# The last whole hour, where the advice window ends, and a moment in the hour after it. Taken from the clock, so
# that the API and the admin page (which ask the clock) read the same window as the tests that pass NOW.
UNTIL = datetime.fromtimestamp(time.time() // 3600 * 3600, UTC)
NOW = UNTIL + timedelta(minutes=7)


def bucket_of(latency: float) -> int:
    return next((i for i, bound in enumerate(LATENCY_BOUNDS) if latency <= bound), len(LATENCY_BOUNDS))


def figures(count: int, latency: float = 0.01, *, tail: tuple[float, int] | None = None, errors_5xx: int = 0,
            errors_4xx: int = 0, errors_gateway: int = 0) -> dict[str, Any]:
    """A point of `count` requests taking `latency` seconds, `tail[1]` of which take `tail[0]` instead."""
    buckets = [0] * BUCKETS
    slow_latency, slow = tail or (latency, 0)
    buckets[bucket_of(latency)] += count - slow
    buckets[bucket_of(slow_latency)] += slow
    return {"count": count, "errors_4xx": errors_4xx, "errors_5xx": errors_5xx, "errors_gateway": errors_gateway,
            "duration_sum": latency * (count - slow) + slow_latency * slow,
            "duration_min": min(latency, slow_latency), "duration_max": max(latency, slow_latency),
            "buckets": buckets}


def mark_rolled_up(until: datetime = UNTIL) -> None:
    """Every rollup complete up to `until`: the advice reads the rollups there, nothing from the raw points."""
    for resolution in ("1m", "5m", "1h"):
        FillState.objects.update_or_create(resolution=resolution, defaults={"filled_until": until})


def hourly(route: str, backend: str, hours: int, count: int | list[int], latency: float = 0.01,
           **extra: Any) -> None:
    """`hours` hourly points ending at UNTIL; `count` per hour, or a list oldest first."""
    counts = count if isinstance(count, list) else [count] * hours
    RollupPoint.objects.bulk_create([
        RollupPoint(resolution="1h", start=UNTIL - timedelta(hours=hours - index), route=route, backend=backend,
                    **figures(value, latency, **extra))
        for index, value in enumerate(counts) if value])
    mark_rolled_up()


def five_minutes(route: str, backend: str, points: list[dict[str, Any]]) -> None:
    """Five-minute points ending at UNTIL, oldest first (each a `figures()` dict)."""
    RollupPoint.objects.bulk_create([
        RollupPoint(resolution="5m", start=UNTIL - timedelta(minutes=5 * (len(points) - index)), route=route,
                    backend=backend, **point)
        for index, point in enumerate(points)])
    mark_rolled_up()


def client_windows(route: str, rates: dict[str, float], windows: int, window_s: float = 10.0) -> None:
    """Each client sending at its rate (requests per second) in `windows` ten-second windows before UNTIL."""
    ClientWindow.objects.bulk_create([
        ClientWindow(start=UNTIL - timedelta(seconds=window_s * (index + 1)), window_s=window_s, route=route,
                     client=client, source="p1", requests=max(1, math.floor(rate * window_s)))
        for client, rate in rates.items() for index in range(windows)])


def route(name: str, ports: tuple[int, ...] = (8080,), **fields: Any) -> Route:
    """A route `name` at /name to backends on 10.0.0.5 (one per port)."""
    return save_route({"name": name, "external_path": f"/{name}", "methods": fields.pop("methods", ["GET"]),
                       "backends": [{"host": "http://10.0.0.5", "port": port} for port in ports], **fields},
                      actor=None, source="test")
