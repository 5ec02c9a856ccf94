"""What every advice rule reads, gathered once per run: the routes as documents, the hourly series of the look-back
window, the five-minute series of the last day, the per-client rates and the workers' live figures."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any

from django.db.models import Prefetch
from django.urls import reverse

from metrics.advice import series
from metrics.aggregates import Agg
from metrics.procfiles import Combined
from metrics.queries import floor
from routes.models import Backend, Route
from routes.services import route_document

LOOKBACK = timedelta(days=7)  # the window most rules judge
BURST_LOOKBACK = timedelta(days=1)  # the five-minute series the breaker rule reads
CLIENT_LOOKBACK = timedelta(hours=3)  # per-client rates (a busy route has a row per client and 10 s)
FORECAST_LOOKBACK = timedelta(days=14)  # the hourly history a forecast is fitted on: two weeks of daily seasons


@dataclass
class Context:
    """The inputs of one advice run. The window ends at the last whole hour, so the findings (and their ids) stay
    the same while the hour lasts: an operator applies what was shown."""

    now: datetime
    live: Combined = field(default_factory=Combined)

    @cached_property
    def until(self) -> datetime:
        return floor(self.now, 3600)

    @cached_property
    def start(self) -> datetime:
        return self.until - LOOKBACK

    @cached_property
    def routes(self) -> dict[str, Route]:
        rows = Route.objects.order_by("name").prefetch_related(
            Prefetch("backends", queryset=Backend.objects.order_by("position", "id")))
        return {route.name: route for route in rows}

    @cached_property
    def documents(self) -> dict[str, dict[str, Any]]:
        return {name: route_document(route) for name, route in self.routes.items()}

    @cached_property
    def hourly(self) -> series.Buckets:
        """Every series per hour over the forecast's history (the rules' window is its last LOOKBACK)."""
        return series.bucketed(self.until - FORECAST_LOOKBACK, self.until, 3600)

    @cached_property
    def five_minutes(self) -> series.Buckets:
        return series.bucketed(self.until - BURST_LOOKBACK, self.until, 300)

    @cached_property
    def client_rates(self) -> dict[str, dict[str, list[float]]]:
        return series.client_rates(self.until - CLIENT_LOOKBACK, self.until)

    @cached_property
    def consumer_rates(self) -> dict[str, dict[str, list[float]]]:
        return series.consumer_rates(self.until - CLIENT_LOOKBACK, self.until)

    def backends(self, route: str) -> dict[str, Agg]:
        """Each backend's traffic on the route over the window (the backend "" is requests no backend got)."""
        out: dict[str, Agg] = {}
        for (name, backend), points in self.hourly.items():
            if name != route:
                continue
            total = out.setdefault(backend, Agg())
            for start, agg in points.items():
                if start >= self.start:
                    total.merge(agg)
        return out

    def route_total(self, route: str) -> Agg:
        total = Agg()
        for agg in self.backends(route).values():
            total.merge(agg)
        return total

    def dashboard(self, route: str = "") -> str:
        """The dashboard page of the route over the window, hourly (the whole gateway's for "")."""
        if not route:
            return reverse("metrics-dashboard:overview") + "?range=604800&interval=1h"
        return reverse("metrics-dashboard:route", args=[route]) + "?range=604800&interval=1h"
