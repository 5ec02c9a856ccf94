"""Advice on balancing: a route whose backends' latencies differ clearly and persistently should balance by
latency (`latency_aware`, peak EWMA), which sends less to the slow backend."""
from __future__ import annotations

from typing import Any

from metrics.advice.context import Context
from metrics.advice.findings import Finding, evidence, ms
from routes.models import Route

RULE = "latency_aware"
MIN_REQUESTS = 200  # per backend over the window
MIN_HOUR_REQUESTS = 20  # per backend in an hour that is compared
MIN_HOURS = 6  # hours in which every backend had enough traffic to compare
P50_RATIO = 1.5  # "clearly": the slowest backend's p50 at least this times the fastest's...
P50_GAP_S = 0.005  # ...and at least this much slower
PERSISTENT_SHARE = 0.75  # "persistently": the same backend is slower by P50_RATIO in this share of the hours
BALANCED = ("http", "websocket", "grpc")


def backend_labels(route: Route) -> list[str]:
    """The route's enabled backends as the series name them (`host:port`)."""
    return [backend.url.split("://", 1)[1] for backend in route.backends.all() if backend.enabled]


def latency_aware(ctx: Context) -> list[Finding]:
    found = []
    for name, route in ctx.routes.items():
        if route.protocol not in BALANCED or route.load_balancing_strategy == RULE:
            continue
        labels = backend_labels(route)
        if len(labels) < 2:
            continue
        finding = _judge(ctx, name, labels)
        if finding is not None:
            found.append(finding)
    return found


def _judge(ctx: Context, route: str, labels: list[str]) -> Finding | None:
    window = ctx.backends(route)
    if any(window.get(label) is None or window[label].count < MIN_REQUESTS for label in labels):
        return None
    p50 = {label: window[label].quantile(0.5) or 0.0 for label in labels}
    fastest = min(labels, key=lambda label: p50[label])
    slowest = max(labels, key=lambda label: p50[label])
    if p50[slowest] < P50_RATIO * p50[fastest] or p50[slowest] - p50[fastest] < P50_GAP_S:
        return None
    compared = slower = 0
    hours = {start for label in labels for start in ctx.hourly.get((route, label), {}) if start >= ctx.start}
    for start in sorted(hours):
        points = [ctx.hourly.get((route, label), {}).get(start) for label in labels]
        if any(point is None or point.count < MIN_HOUR_REQUESTS for point in points):
            continue
        compared += 1
        slow = ctx.hourly[(route, slowest)][start].quantile(0.5) or 0.0
        fast = min(point.quantile(0.5) or 0.0 for point in points if point is not None)
        if slow >= P50_RATIO * fast and slow - fast >= P50_GAP_S:
            slower += 1
    if compared < MIN_HOURS or slower < PERSISTENT_SHARE * compared:
        return None
    figures: dict[str, Any] = {
        "backends": {label: {"count": window[label].count, "p50_ms": ms(window[label].quantile(0.5)),
                             "p95_ms": ms(window[label].quantile(0.95))} for label in labels},
        "slowest": slowest, "fastest": fastest, "hours_compared": compared, "hours_slower": slower,
    }
    ratio = p50[slowest] / p50[fastest] if p50[fastest] else float("inf")
    text = (f"route {route}: backend {slowest} answers with a p50 of {ms(p50[slowest])} ms against "
            f"{ms(p50[fastest])} ms for {fastest} ({ratio:.1f}x), slower in {slower} of {compared} hours of the "
            "last 7 days: balance by latency (latency_aware) to send it less.")
    return Finding(RULE, route, "warning", text,
                   evidence(figures, ctx.start, ctx.until, [f"latency route={route} backend={label}"
                                                             for label in labels], ctx.dashboard(route)),
                   patch={"load_balancing_strategy": "latency_aware"}, fields=("load_balancing_strategy",))
