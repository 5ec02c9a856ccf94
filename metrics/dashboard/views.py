"""Dashboard pages: the chart layout of each view, the recommendations and the breakers, rendered in the admin.

The charts themselves are drawn in the browser (static/metrics/dashboard.js with uPlot) from the history API,
and the live figures arrive over the /ws/metrics/live/ WebSocket.
"""
from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from metrics.recommendations import recommend
from metrics.views import combined_figures
from routes.models import Route

UPLOT_SCRIPT = "vendor/uplot/uPlot.iife.min.js"
UPLOT_STYLE = "vendor/uplot/uPlot.min.css"
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}

# Each chart: a title, the history series (`name`) and the figures drawn from its points.
REQUESTS = {"id": "requests", "title": "Requests per second", "name": "requests", "fields": ["rate"],
            "unit": "req/s"}
LATENCY = {"id": "latency", "title": "Latency percentiles", "name": "latency", "fields": ["p50", "p95", "p99"],
           "unit": "s"}
LATENCY_SPREAD = {"id": "latency-spread", "title": "Latency average and maximum", "name": "latency",
                  "fields": ["avg", "max"], "unit": "s"}
ERRORS = {"id": "errors", "title": "Errors by class", "name": "errors",
          "fields": ["errors_4xx", "errors_5xx", "errors_gateway"], "unit": "requests"}
# A consumer's history keeps no gateway errors and no bytes (metrics.models.ConsumerAggregate).
CONSUMER_ERRORS = {**ERRORS, "fields": ["errors_4xx", "errors_5xx"]}
ERROR_RATIO = {"id": "error-ratio", "title": "5xx ratio", "name": "errors", "fields": ["ratio"], "unit": "ratio"}
BYTES = {"id": "bytes", "title": "Bytes in and out", "name": "bytes", "fields": ["bytes_in", "bytes_out"],
         "unit": "bytes"}
LIVE = {"id": "live", "title": "Live requests per second, whole gateway (last 2 minutes)", "live": True,
        "fields": ["rps"], "unit": "req/s"}
ROUTE_LIVE = {**LIVE, "title": "Live requests per second of this route (last 2 minutes)"}

# The range and resolution pickers; the page's query string (?range=3600&interval=auto) chooses among them, so a
# reload or a shared link shows the same charts.
RANGES = [(900, "last 15 minutes"), (3600, "last hour"), (21600, "last 6 hours"), (86400, "last 24 hours"),
          (604800, "last 7 days"), (2592000, "last 30 days")]
DEFAULT_RANGE = 3600
INTERVALS = [("auto", "auto"), ("10s", "10 s"), ("1m", "1 min"), ("5m", "5 min"), ("1h", "1 h"), ("1d", "1 day")]

VIEWS: dict[str, dict[str, Any]] = {
    "overview": {"title": "Overview", "charts": [LIVE, REQUESTS, LATENCY, ERROR_RATIO, BYTES]},
    "performance": {"title": "Performance", "charts": [LATENCY, LATENCY_SPREAD, REQUESTS]},
    "errors": {"title": "Errors", "charts": [ERRORS, ERROR_RATIO]},
    "traffic": {"title": "Traffic", "charts": [LIVE, REQUESTS, BYTES]},
    "breakers": {"title": "Circuit breakers", "charts": [ERRORS]},
}


def _routes() -> list[str]:
    return list(Route.objects.order_by("name").values_list("name", flat=True))


def _chosen_range(request: HttpRequest) -> int:
    """The `range` of the query string when it is one of the picker's, else the default."""
    value = request.GET.get("range", "")
    return int(value) if value.isdigit() and int(value) in dict(RANGES) else DEFAULT_RANGE


def _chosen_interval(request: HttpRequest) -> str:
    value = request.GET.get("interval", "")
    return value if value in dict(INTERVALS) else "auto"


def _live_now(live: Any, route: str | None) -> dict[str, Any]:
    """The live panel's first figures (the WebSocket updates them): the route's own on a route page."""
    requests = live.totals.requests.items()
    return {"requests": sum(value for (name, _, _), value in requests if route is None or name == route),
            "active": live.totals.connections_active, "workers": live.workers}


def _page(request: HttpRequest, view: str, route: str | None) -> HttpResponse:
    live = combined_figures()
    breakers = [{"route": r, "backend": b, "state": BREAKER_STATES.get(state, "closed"),
                 "opens": live.totals.breaker_opens.get((r, b), 0)}
                for (r, b), state in sorted(live.breakers.items()) if route is None or r == route]
    config = VIEWS[view]
    context = {
        **admin.site.each_context(request),
        "title": f"Metrics: {route}" if route else f"Metrics: {config['title']}",
        "views": [(key, value["title"]) for key, value in VIEWS.items()],
        "view": view,
        "route": route,
        "consumer": None,
        "routes": _routes(),
        "charts": config["charts"] if not route else [ROUTE_LIVE, REQUESTS, LATENCY, ERRORS, BYTES],
        "show_breakers": view in ("breakers", "overview") or route is not None,
        "breakers": breakers,
        "recommendations": [r for r in recommend(timezone.now(), live) if route is None or r.subject == route],
        "uplot_available": finders.find(UPLOT_SCRIPT) is not None,
        "uplot_script": UPLOT_SCRIPT,
        "uplot_style": UPLOT_STYLE,
        "live_totals": _live_now(live, route),
        "ranges": RANGES,
        "chosen_range": _chosen_range(request),
        "intervals": INTERVALS,
        "chosen_interval": _chosen_interval(request),
    }
    return render(request, "admin/metrics/dashboard.html", context)


def consumer_page(request: HttpRequest, consumer: str) -> HttpResponse:
    """A consumer's charts: its requests per second, errors by class and latency percentiles, from the history
    API's `consumer` series (no live figures: the live socket carries no per-consumer figures)."""
    context = {
        **admin.site.each_context(request),
        "title": f"Metrics: consumer {consumer}",
        "views": [(key, value["title"]) for key, value in VIEWS.items()],
        "view": "consumers",
        "route": None,
        "consumer": consumer,
        "routes": _routes(),
        "charts": [REQUESTS, CONSUMER_ERRORS, LATENCY],
        "show_breakers": False,
        "uplot_available": finders.find(UPLOT_SCRIPT) is not None,
        "uplot_script": UPLOT_SCRIPT,
        "uplot_style": UPLOT_STYLE,
        "ranges": RANGES,
        "chosen_range": _chosen_range(request),
        "intervals": INTERVALS,
        "chosen_interval": _chosen_interval(request),
    }
    return render(request, "admin/metrics/dashboard.html", context)


def dashboard(request: HttpRequest, view: str = "overview") -> HttpResponse:
    if view not in VIEWS:
        raise Http404(f"No dashboard view {view!r}.")
    return _page(request, view, None)


def route_page(request: HttpRequest, route: str) -> HttpResponse:
    return _page(request, "overview", route)
