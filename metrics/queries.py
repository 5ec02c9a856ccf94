"""Reading the stored traffic history: the list of series, and the points of one series over a time range.

Used by the history API and the admin dashboard alike. Points of a series are summed at read time over the
rows that match (a route's series sums its backends; a backend's sums its routes; no filter sums everything),
and read back as count, sum, min, max, avg and p50/p95/p99 from the latency buckets. A query with a `consumer`
reads that consumer's points instead (metrics.consumer_queries has the per-consumer summary). `series_totals` sums a
recent window per series for the admin home and the backend health list.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Min

from metrics.aggregates import Agg, SeriesKey
from metrics.consumer_queries import consumer_names
from metrics.models import RESOLUTION_SECONDS, FillState, RawPoint, Resolution, RollupPoint
from metrics.rollups import consumer_rows, retention_days, source_rows

NAMES = ("requests", "latency", "errors", "bytes")
CONSUMER_NAMES = ("requests", "latency", "errors")  # a consumer's points keep no bytes
MAX_POINTS = 2000


class PointRange:
    """What a query over stored points derives from its `interval`, `start` and `end` (its own fields)."""

    interval: str
    start: datetime
    end: datetime

    @property
    def step(self) -> int:
        return RESOLUTION_SECONDS[self.interval]

    @property
    def point_count(self) -> int:
        return max(0, int((self.end - self.start).total_seconds()) // self.step)


@dataclass(frozen=True)
class HistoryQuery(PointRange):
    name: str
    interval: str
    start: datetime
    end: datetime
    route: str | None = None
    backend: str | None = None
    consumer: str | None = None


def floor(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def default_range(interval: str, now: datetime) -> tuple[datetime, datetime]:
    """The last 120 points of the interval, ending with the current bucket."""
    step = RESOLUTION_SECONDS[interval]
    end = floor(now, step) + timedelta(seconds=step)
    return end - timedelta(seconds=step * 120), end


def history(query: HistoryQuery) -> list[dict[str, Any]]:
    """One entry per bucket of the range that has traffic: {"t": ISO start, ...figures of the name}."""
    if query.consumer is not None:
        rows = consumer_rows(query.interval).filter(consumer=query.consumer, start__gte=query.start,
                                                    start__lt=query.end)
        read = Agg.from_consumer_row
    else:
        rows = source_rows(query.interval).filter(start__gte=query.start, start__lt=query.end)
        read = Agg.from_row
    if query.route is not None:
        rows = rows.filter(route=query.route)
    if query.backend is not None:
        rows = rows.filter(backend=query.backend)
    buckets: dict[datetime, Agg] = defaultdict(Agg)
    for row in rows.order_by("start").iterator(chunk_size=2000):
        buckets[row.start].merge(read(row))
    points = [{"t": start.isoformat().replace("+00:00", "Z"), **figures(query.name, agg, query.step)}
              for start, agg in sorted(buckets.items())]
    if query.consumer is not None and query.name == "errors":
        for point in points:
            point["errors_gateway"] = None  # not kept per consumer: a 0 would claim there were none
    return points


def figures(name: str, agg: Agg, step: int) -> dict[str, Any]:
    """What a point of `name` says: counts for requests/errors/bytes, durations (seconds) for latency."""
    if name == "requests":
        return {"count": agg.count, "sum": agg.count, "min": None, "max": None, "avg": None,
                "rate": round(agg.count / step, 3)}
    if name == "errors":
        return {"count": agg.count, "errors_4xx": agg.errors_4xx, "errors_5xx": agg.errors_5xx,
                "errors_gateway": agg.errors_gateway, "sum": agg.errors_5xx,
                "ratio": round(agg.errors_5xx / agg.count, 4) if agg.count else None}
    if name == "bytes":
        return {"count": agg.count, "bytes_in": agg.bytes_in, "bytes_out": agg.bytes_out,
                "sum": agg.bytes_in + agg.bytes_out}
    return {"count": agg.count, "sum": agg.duration_sum, "min": agg.duration_min, "max": agg.duration_max,
            "avg": agg.average(), "p50": agg.quantile(0.5), "p95": agg.quantile(0.95), "p99": agg.quantile(0.99)}


def series_totals(start: datetime, end: datetime) -> dict[SeriesKey, Agg]:
    """Each (route, backend)'s traffic over [start, end), in three queries whatever the number of series.

    Whole minutes already rolled up are read from the 1-minute rollup (a sixth of the rows), the rest from the
    raw 10-second points; the 1-minute fill marker separates the two, so no point is counted twice. `start`
    should fall on a whole minute (a rolled-up minute that began before it is left out).
    """
    marker = FillState.objects.filter(resolution="1m").values_list("filled_until", flat=True).first()
    totals: dict[SeriesKey, Agg] = defaultdict(Agg)
    raw_from = start
    if marker is not None and marker > start:
        rolled_until = min(marker, end)
        rows = source_rows("1m").filter(start__gte=start, start__lt=rolled_until)
        for row in rows.iterator(chunk_size=2000):
            totals[(row.route, row.backend)].merge(Agg.from_row(row))
        raw_from = rolled_until
    for row in source_rows("10s").filter(start__gte=raw_from, start__lt=end).iterator(chunk_size=2000):
        totals[(row.route, row.backend)].merge(Agg.from_row(row))
    return dict(totals)


def series_catalog() -> dict[str, Any]:
    """Names, routes, backends, consumers, resolutions with their retention, and how far each rollup has got."""
    routes: set[str] = set()
    backends: set[str] = set()
    for model_rows in (RawPoint.objects.all(), RollupPoint.objects.all()):
        routes.update(model_rows.exclude(route="").values_list("route", flat=True).distinct())
        backends.update(model_rows.exclude(backend="").values_list("backend", flat=True).distinct())
    markers = dict(FillState.objects.values_list("resolution", "filled_until"))
    days = retention_days()
    resolutions = []
    for value, label in Resolution.choices:
        first = source_rows(value).aggregate(first=Min("start"))["first"]
        resolutions.append({
            "interval": value, "label": label, "seconds": RESOLUTION_SECONDS[value],
            "retention_days": days.get(value), "oldest_point": first,
            "filled_until": markers.get(value),
        })
    return {"names": list(NAMES), "routes": sorted(routes), "backends": sorted(backends),
            "consumers": consumer_names(), "resolutions": resolutions, "max_points": MAX_POINTS}
