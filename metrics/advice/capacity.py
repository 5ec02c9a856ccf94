"""Capacity: each route's load over the next day, forecast from its hourly series (metrics.advice.forecast), and the
number of gateway workers the forecast peak needs at the requests per second one worker serves: the operator's
RUSTA_WORKER_CAPACITY_RPS, else measured from the live workers' figures (requests over CPU seconds)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings

from metrics.advice.context import FORECAST_LOOKBACK, Context
from metrics.advice.findings import Finding, evidence, iso
from metrics.advice.forecast import SEASON, Forecast, forecast

RULE = "capacity"
HORIZON = SEASON  # hours forecast
UTILISATION = 0.7  # workers are counted to run at most this busy at the forecast peak
MIN_BUSY_S = 5.0  # CPU seconds the workers must have used before their rate is trusted


@dataclass(frozen=True)
class RouteForecast:
    route: str
    forecast: Forecast
    first_hour: datetime

    @property
    def peak_rps(self) -> float:
        return float(self.forecast.values.max()) / 3600 if len(self.forecast.values) else 0.0

    def as_dict(self, until: datetime) -> dict[str, Any]:
        peak = int(np.argmax(self.forecast.values)) if len(self.forecast.values) else 0
        return {"route": self.route, "model": self.forecast.model, "params": self.forecast.params,
                "history_hours": self.forecast.history, "history_from": iso(self.first_hour),
                "rmse_requests_per_hour": round(self.forecast.rmse, 1),
                "peak_rps": round(self.peak_rps, 3), "peak_hour": iso(until + timedelta(hours=peak)),
                "requests_per_hour": [round(float(v), 1) for v in self.forecast.values]}


def hourly_counts(ctx: Context, route: str) -> tuple[datetime, np.ndarray] | None:
    """The route's requests per hour from its first hour with traffic to the last whole hour (hours without a
    point count 0); None without traffic."""
    counts: dict[datetime, int] = {}
    for (name, _backend), points in ctx.hourly.items():
        if name == route:
            for start, agg in points.items():
                counts[start] = counts.get(start, 0) + agg.count
    if not any(counts.values()):
        return None
    first = min(start for start, count in counts.items() if count)
    hours = int((ctx.until - first).total_seconds() // 3600)
    return first, np.array([counts.get(first + timedelta(hours=h), 0) for h in range(hours)], dtype=float)


def route_forecasts(ctx: Context) -> list[RouteForecast]:
    out = []
    for name in ctx.routes:
        series = hourly_counts(ctx, name)
        if series is not None and len(series[1]):
            out.append(RouteForecast(name, forecast(series[1], HORIZON), series[0]))
    return out


def worker_capacity(ctx: Context) -> tuple[float | None, str]:
    """(requests per second one worker serves, where the figure comes from); None when not known yet."""
    if settings.RUSTA_WORKER_CAPACITY_RPS > 0:
        return settings.RUSTA_WORKER_CAPACITY_RPS, "RUSTA_WORKER_CAPACITY_RPS"
    if ctx.live.busy_seconds >= MIN_BUSY_S and ctx.live.busy_requests:
        return ctx.live.busy_requests / ctx.live.busy_seconds, "measured: the live workers' requests over CPU seconds"
    return None, "not measured yet (the workers have used under 5 CPU seconds): set RUSTA_WORKER_CAPACITY_RPS"


def workers_needed(peak_rps: float, capacity_rps: float) -> int:
    return max(1, math.ceil(peak_rps / (capacity_rps * UTILISATION)))


def gateway_peak(forecasts: list[RouteForecast], until: datetime) -> tuple[float, datetime]:
    """The whole gateway's forecast peak (requests per second, the routes' forecasts added hour by hour) and its
    hour."""
    total = np.sum([f.forecast.values for f in forecasts], axis=0)
    return float(total.max()) / 3600, until + timedelta(hours=int(np.argmax(total)))


def capacity(ctx: Context) -> list[Finding]:
    """One finding for the gateway when the forecast peak needs more workers than are running (or, with no
    worker running, how many it needs); silent otherwise."""
    forecasts = route_forecasts(ctx)
    per_capacity, source = worker_capacity(ctx)
    if not forecasts or per_capacity is None:
        return []
    peak_rps, peak_hour = gateway_peak(forecasts, ctx.until)
    needed = workers_needed(peak_rps, per_capacity)
    running = ctx.live.workers
    if running and needed <= running:
        return []
    figures = {"forecast_peak_rps": round(peak_rps, 3), "forecast_peak_hour": iso(peak_hour),
               "worker_capacity_rps": round(per_capacity, 1), "worker_capacity_from": source,
               "utilisation": UTILISATION, "workers_needed": needed, "workers_running": running,
               "routes": [f.as_dict(ctx.until) for f in forecasts]}
    proof = evidence(figures, ctx.until - FORECAST_LOOKBACK, ctx.until, [f"requests route={f.route} (1 h)"
                                                                          for f in forecasts], ctx.dashboard())
    if running:
        text = (f"gateway: the next 24 h peak at {peak_rps:.1f} req/s (forecast at {iso(peak_hour)}); at "
                f"{per_capacity:.0f} req/s per worker and {UTILISATION:.0%} busy that needs {needed} workers, "
                f"{running} are running: start {needed - running} more.")
        return [Finding(RULE, "", "warning", text, proof)]
    text = (f"gateway: the next 24 h peak at {peak_rps:.1f} req/s (forecast at {iso(peak_hour)}); at "
            f"{per_capacity:.0f} req/s per worker and {UTILISATION:.0%} busy that needs {needed} worker(s).")
    return [Finding(RULE, "", "info", text, proof)]
