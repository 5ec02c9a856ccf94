"""The dashboard's Consumers view: every consumer's requests, error share, p95 and busiest routes over the chosen
range, each linking to its own page of charts (metrics.dashboard.views.consumer_page)."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from metrics.consumer_queries import consumer_summary
from metrics.dashboard.views import RANGES, VIEWS, _chosen_range, _routes
from routes.consumers.models import Consumer


def _seconds(value: float | None) -> str:
    """A duration as the charts write it: milliseconds under a second, three significant digits."""
    if value is None:
        return "–"
    return f"{value:.3g} s" if value >= 1 else f"{value * 1000:.3g} ms"


def consumers_page(request: HttpRequest) -> HttpResponse:
    """The table, busiest consumer first; the consumers configured but silent in the range are named below it."""
    seconds = _chosen_range(request)
    end = timezone.now()
    rows = consumer_summary(end - timedelta(seconds=seconds), end)
    seen = {row["consumer"] for row in rows}
    configured = set(Consumer.objects.values_list("name", flat=True))
    for row in rows:
        row["configured"] = row["consumer"] in configured
        row["error_share"] = "–" if row["error_ratio"] is None else f"{row['error_ratio'] * 100:.1f}%"
        row["p95_text"] = _seconds(row["p95"])
        row["more_routes"] = row["routes"] - len(row["top_routes"])
    context = {
        **admin.site.each_context(request),
        "title": "Metrics: Consumers",
        "views": [(key, value["title"]) for key, value in VIEWS.items()],
        "view": "consumers",
        "routes": _routes(),
        "rows": rows,
        "silent": sorted(configured - seen),
        "ranges": RANGES,
        "chosen_range": seconds,
        "range_label": dict(RANGES)[seconds],
    }
    return render(request, "admin/metrics/consumers.html", context)
