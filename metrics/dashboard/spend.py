"""The dashboard's Spend view: what LLM routes cost over the chosen range, drawn per consumer and per model (uPlot,
from /api/metrics/llm/spend/ by static/metrics/spend.js) above the table of each consumer's spend per model."""
from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.contrib.staticfiles import finders
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from metrics.dashboard.views import RANGES, UPLOT_SCRIPT, UPLOT_STYLE, VIEWS, _chosen_range, _routes
from metrics.llm_spend_queries import spend_summary

# The charts spend.js draws: cost per bucket, one line per consumer or per model.
SPEND_CHARTS = [{"id": "spend-by-consumer", "title": "Cost per consumer", "by": "consumer"},
                {"id": "spend-by-model", "title": "Cost per model", "by": "model"}]


def spend_page(request: HttpRequest) -> HttpResponse:
    """The charts (drawn in the browser) and the summary table, most expensive consumer and model first."""
    seconds = _chosen_range(request)
    end = timezone.now()
    summary = spend_summary(end - timedelta(seconds=seconds), end)
    context = {
        **admin.site.each_context(request),
        "title": "Metrics: Spend",
        "views": [(key, value["title"]) for key, value in VIEWS.items()],
        "view": "spend",
        "routes": _routes(),
        "rows": summary["rows"],
        "total": summary["total"],
        "charts": SPEND_CHARTS,
        "range_seconds": seconds,
        "uplot_available": finders.find(UPLOT_SCRIPT) is not None,
        "uplot_script": UPLOT_SCRIPT,
        "uplot_style": UPLOT_STYLE,
        "ranges": RANGES,
        "chosen_range": seconds,
        "range_label": dict(RANGES)[seconds],
    }
    return render(request, "admin/metrics/spend.html", context)
