"""A route's AI routing page in the admin: what the gateway's workers decided for it, as HTML and as JSON to poll.

Everything comes from the workers' combined AI record (metrics.procfiles, which adds up each worker's
protocols.ai.records snapshot): nothing here touches the database but the route's own row.
"""
from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.contrib import admin
from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from metrics.dashboard.views import UPLOT_SCRIPT, UPLOT_STYLE
from metrics.views import combined_figures
from protocols.ai.decide import SOURCES
from protocols.ai.records import ANOMALY_ACTIONS, MINUTES
from routes.models import Route

POLL_SECONDS = 5  # how often the page asks for the JSON again


def ai_enabled(block: Any) -> bool:
    """Whether a route's `ai_policy` block turns AI routing on (a block without `enabled` does, as the data plane
    compiles it: protocols.ai.config.ai_policy)."""
    return isinstance(block, dict) and block.get("enabled", True) is True


def _time(at: float) -> str:
    return timezone.localtime(datetime.fromtimestamp(at, UTC)).strftime("%Y-%m-%d %H:%M:%S")


def _strategies(ai: dict[str, Any], route: str) -> list[dict[str, Any]]:
    """Per strategy: decisions by source, their total and the average time they took (ms, None for none)."""
    rows: dict[str, dict[str, Any]] = {}
    for name, strategy, source, count in ai["decisions"]:
        if name == route:
            row = rows.setdefault(strategy, {"strategy": strategy, **dict.fromkeys(SOURCES, 0)})
            row[source] = row.get(source, 0) + count
    for name, strategy, histogram in ai["decision_seconds"]:
        if name == route and strategy in rows:
            count = sum(histogram[:-1])
            rows[strategy]["avg_ms"] = round(histogram[-1] / count * 1000, 3) if count else None
    for row in rows.values():
        row["total"] = sum(row[source] for source in SOURCES)
        row.setdefault("avg_ms", None)
    return [rows[strategy] for strategy in sorted(rows)]


def _chart(ai: dict[str, Any], route: str, now: float) -> dict[str, Any]:
    """Decisions per minute by source over the last MINUTES minutes, every minute present (0 when none)."""
    last = int(now // 60) * 60
    minutes = [last - (MINUTES - 1 - index) * 60 for index in range(MINUTES)]
    position = {minute: index for index, minute in enumerate(minutes)}
    series = {source: [0] * MINUTES for source in SOURCES}
    for minute, name, source, count in ai["minutes"]:
        index = position.get(int(minute))
        if name == route and index is not None and source in series:
            series[source][index] += count
    return {"minutes": minutes, "series": series}


def route_record(ai: dict[str, Any], workers: int, route: str, now: float) -> dict[str, Any]:
    """What the page shows of one route, JSON-friendly: the decision mix (in total, per strategy and per minute),
    the local model's agreement with the LLM, the fallback reasons, the last decisions and anomaly verdicts
    (newest first), and how many gateway workers reported."""
    strategies = _strategies(ai, route)
    agreed, compared = next(((row[1], row[2]) for row in ai["agreement"] if row[0] == route), (0, 0))
    fallbacks = sorted(({"strategy": strategy, "reason": reason, "count": count}
                        for name, strategy, reason, count in ai["fallbacks"] if name == route),
                       key=lambda row: (-row["count"], row["strategy"], row["reason"]))
    anomalies = dict.fromkeys(ANOMALY_ACTIONS, 0)
    for name, action, count in ai["anomalies"]:
        if name == route:
            anomalies[action] = anomalies.get(action, 0) + count
    recent = [{"time": _time(row["at"]), "at": row["at"], "strategy": row["strategy"], "source": row["source"],
               "backend": row["backend"], "reason": row["reason"], "ms": row["elapsed_ms"]}
              for row in reversed(ai["recent"]) if row["route"] == route]
    verdicts = [{"time": _time(row["at"]), "at": row["at"], "client": row["client"], "score": row["score"],
                 "reasons": ", ".join(row["reasons"]), "action": row["action"]}
                for row in reversed(ai["verdicts"]) if row["route"] == route]
    return {
        "route": route,
        "workers": workers,
        "decisions": sum(row["total"] for row in strategies),
        "sources": {source: sum(row[source] for row in strategies) for source in SOURCES},
        "strategies": strategies,
        "agreement": {"agreed": agreed, "compared": compared,
                      "rate": round(agreed / compared, 4) if compared else None,
                      "rate_text": f"{agreed / compared:.1%}" if compared else "–"},
        "fallbacks": fallbacks,
        "anomalies": anomalies,
        "chart": _chart(ai, route, now),
        "recent": recent,
        "verdicts": verdicts,
    }


def _route(name: str) -> Route:
    route = Route.objects.filter(name=name).only("name", "ai_policy").first()
    if route is None:
        raise Http404(f"No route {name!r}.")
    return route


def _record(name: str) -> dict[str, Any]:
    combined = combined_figures()
    return route_record(combined.ai, combined.workers, name, time.time())


@require_GET
def route_page(request: HttpRequest, route: str) -> HttpResponse:
    """The page (staff only: mounted through admin.site.admin_view)."""
    found = _route(route)
    context = {
        **admin.site.each_context(request),
        "title": f"AI routing: {found.name}",
        "route": found,
        "enabled": ai_enabled(found.ai_policy),
        "record": _record(found.name),
        "poll_seconds": POLL_SECONDS,
        "sources": SOURCES,
        "uplot_available": finders.find(UPLOT_SCRIPT) is not None,
        "uplot_script": UPLOT_SCRIPT,
        "uplot_style": UPLOT_STYLE,
    }
    return render(request, "admin/metrics/ai_routing.html", context)


@require_GET
def route_data(request: HttpRequest, route: str) -> JsonResponse:
    """The page's figures as JSON (`route_record`), which the page polls every POLL_SECONDS."""
    return JsonResponse(_record(_route(route).name))
