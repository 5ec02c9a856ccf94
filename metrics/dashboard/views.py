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
ERROR_RATIO = {"id": "error-ratio", "title": "5xx ratio", "name": "errors", "fields": ["ratio"], "unit": "ratio"}
BYTES = {"id": "bytes", "title": "Bytes in and out", "name": "bytes", "fields": ["bytes_in", "bytes_out"],
         "unit": "bytes"}
LIVE = {"id": "live", "title": "Live requests per second (last 2 minutes)", "live": True, "fields": ["rps"],
        "unit": "req/s"}

VIEWS: dict[str, dict[str, Any]] = {
    "overview": {"title": "Overview", "charts": [LIVE, REQUESTS, LATENCY, ERROR_RATIO, BYTES]},
    "performance": {"title": "Performance", "charts": [LATENCY, LATENCY_SPREAD, REQUESTS]},
    "errors": {"title": "Errors", "charts": [ERRORS, ERROR_RATIO]},
    "traffic": {"title": "Traffic", "charts": [LIVE, REQUESTS, BYTES]},
    "breakers": {"title": "Circuit breakers", "charts": [ERRORS]},
}


def _routes() -> list[str]:
    return list(Route.objects.order_by("name").values_list("name", flat=True))


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
        "routes": _routes(),
        "charts": config["charts"] if not route else [LIVE, REQUESTS, LATENCY, ERRORS, BYTES],
        "show_breakers": view in ("breakers", "overview") or route is not None,
        "breakers": breakers,
        "recommendations": [r for r in recommend(timezone.now(), live) if route is None or r.subject == route],
        "uplot_available": finders.find(UPLOT_SCRIPT) is not None,
        "uplot_script": UPLOT_SCRIPT,
        "uplot_style": UPLOT_STYLE,
        "live_totals": {"requests": sum(live.totals.requests.values()),
                        "active": live.totals.connections_active, "workers": live.workers},
    }
    return render(request, "admin/metrics/dashboard.html", context)


def dashboard(request: HttpRequest, view: str = "overview") -> HttpResponse:
    if view not in VIEWS:
        raise Http404(f"No dashboard view {view!r}.")
    return _page(request, view, None)


def route_page(request: HttpRequest, route: str) -> HttpResponse:
    return _page(request, "overview", route)
