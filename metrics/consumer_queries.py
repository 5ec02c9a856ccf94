"""Reading consumers' traffic history: each consumer's requests, errors, latency and busiest routes over a range.

A range is read from the coarsest resolutions that cover it (`cover`): whole days from the 1-day rollup, whole
hours from the 1-hour one, and so on down to the raw 10-second points after the 1-minute rollup's marker, each
only where its rollup is filled. So 30 days cost about as few rows as one hour, and no point is counted twice
(every resolution's buckets are cut at the same instants). The per-consumer series themselves go through
metrics.queries.history, with a `consumer`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from metrics.aggregates import Agg
from metrics.models import RESOLUTION_SECONDS, ConsumerRawPoint, ConsumerRollupPoint, FillState
from metrics.rollups import consumer_rows

TOP_ROUTES = 5
# Coarsest first: each resolution covers the whole buckets it can inside what the coarser ones left.
_COVERING = ("1d", "1h", "5m", "1m")

Segment = tuple[str, datetime, datetime]  # resolution, start, end


def _floor(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def _ceil(moment: datetime, seconds: int) -> datetime:
    epoch = math.ceil(moment.timestamp())
    return datetime.fromtimestamp(epoch + (-epoch) % seconds, UTC)


def cover(start: datetime, end: datetime, markers: dict[str, datetime]) -> list[Segment]:
    """The (resolution, start, end) pieces that make up [start, end): whole buckets of a rollup where it is filled
    (`markers`: each resolution's FillState), raw points for the rest."""
    segments: list[Segment] = []

    def fill(low: datetime, high: datetime, levels: tuple[str, ...]) -> None:
        if low >= high:
            return
        if not levels:
            segments.append(("10s", low, high))
            return
        resolution, finer = levels[0], levels[1:]
        step = RESOLUTION_SECONDS[resolution]
        filled = markers.get(resolution)
        first = _ceil(low, step)
        last = min(_floor(high, step), _floor(filled, step)) if filled is not None else first
        if first >= last:
            fill(low, high, finer)
            return
        fill(low, first, finer)
        segments.append((resolution, first, last))
        fill(last, high, finer)

    fill(start, end, _COVERING)
    return segments


def consumer_totals(start: datetime, end: datetime) -> dict[tuple[str, str], Agg]:
    """Each (consumer, route)'s traffic over [start, end), one query per piece of the range's cover."""
    markers = dict(FillState.objects.values_list("resolution", "filled_until"))
    totals: dict[tuple[str, str], Agg] = defaultdict(Agg)
    for resolution, low, high in cover(start, end, markers):
        for row in consumer_rows(resolution).filter(start__gte=low, start__lt=high).iterator(chunk_size=2000):
            totals[(row.consumer, row.route)].merge(Agg.from_consumer_row(row))
    return dict(totals)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def consumer_summary(start: datetime, end: datetime, top: int = TOP_ROUTES) -> list[dict[str, Any]]:
    """Every consumer with traffic in [start, end), busiest first: requests, req/s, 4xx and 5xx, their share,
    latency p50/p95/p99 (seconds), and its `top` routes by requests with the same figures."""
    by_consumer: dict[str, list[tuple[str, Agg]]] = defaultdict(list)
    for (consumer, route), agg in consumer_totals(start, end).items():
        by_consumer[consumer].append((route, agg))
    seconds = max(1.0, (end - start).total_seconds())
    summary = []
    for consumer, routes in by_consumer.items():
        total = Agg()
        for _route, agg in routes:
            total.merge(agg)
        routes.sort(key=lambda item: (-item[1].count, item[0]))
        summary.append({
            "consumer": consumer, **_figures(total, seconds),
            "routes": len(routes),
            "top_routes": [{"route": route, **_figures(agg, seconds)} for route, agg in routes[:top]],
        })
    summary.sort(key=lambda row: (-row["requests"], row["consumer"]))
    return summary


def _figures(agg: Agg, seconds: float) -> dict[str, Any]:
    return {
        "requests": agg.count, "rate": round(agg.count / seconds, 3),
        "errors_4xx": agg.errors_4xx, "errors_5xx": agg.errors_5xx,
        "error_ratio": _ratio(agg.errors_4xx + agg.errors_5xx, agg.count),
        "ratio_5xx": _ratio(agg.errors_5xx, agg.count),
        "p50": agg.quantile(0.5), "p95": agg.quantile(0.95), "p99": agg.quantile(0.99),
    }


def consumer_names() -> list[str]:
    """The consumers that have stored history (a deleted or renamed consumer's history stays under its old name)."""
    names: set[str] = set()
    for rows in (ConsumerRawPoint.objects.all(), ConsumerRollupPoint.objects.all()):
        names.update(rows.values_list("consumer", flat=True).distinct())
    return sorted(names)
