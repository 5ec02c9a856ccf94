"""Rules that read the stored series, the live figures and the health checks, and explain what looks wrong.

Each rule returns `Recommendation`s whose text says what was seen, over which window, and what is the likely
cause, e.g. "route users: 5xx at 12% over the last 15 min; backend 10.0.0.5:8080's circuit breaker is open and
its health checks fail (status 503): 10.0.0.5:8080 is the likely cause". The dashboard shows them.

The advice rules (metrics.advice: balancing, timeouts, breakers, rate limits, caching, capacity) add theirs, in
their template words; the advice page shows them with their evidence and a draft to apply.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from metrics import certificates
from metrics.advice.engine import advise
from metrics.advice.findings import SEVERITIES
from metrics.aggregates import Agg
from metrics.models import RawPoint, RollupPoint
from metrics.procfiles import Combined
from routes.models import BackendHealth, HealthState, Override

WINDOW = timedelta(minutes=15)
BASELINE = timedelta(hours=24)
MIN_REQUESTS = 20  # fewer requests than this in the window say nothing
ERROR_RATIO = 0.05
P99_FACTOR = 2.0
P99_FLOOR = 0.05  # seconds: a p99 under this is never worth a warning


@dataclass(frozen=True)
class Recommendation:
    severity: str  # "critical", "warning" or "info" (metrics.advice.findings.SEVERITIES)
    subject: str  # the route or backend it is about
    text: str


def _series(since: datetime, until: datetime) -> dict[tuple[str, str], Agg]:
    out: dict[tuple[str, str], Agg] = defaultdict(Agg)
    for row in RawPoint.objects.filter(start__gte=since, start__lt=until).iterator(chunk_size=2000):
        out[(row.route, row.backend)].merge(Agg.from_row(row))
    return out


def _baseline(since: datetime, until: datetime) -> dict[str, Agg]:
    """Per route, from the 5-minute rollups (cheap over a day)."""
    out: dict[str, Agg] = defaultdict(Agg)
    rows = RollupPoint.objects.filter(resolution="5m", start__gte=since, start__lt=until)
    for row in rows.iterator(chunk_size=2000):
        out[row.route].merge(Agg.from_row(row))
    return out


def _down_backends() -> dict[str, str]:
    """backend label (host:port) -> why it is down, per the active health checks or an operator."""
    down: dict[str, str] = {}
    for health in BackendHealth.objects.select_related("backend"):
        label = f"{health.backend.host}:{health.backend.port}"
        if health.override == Override.DOWN:
            down[label] = "forced down by an operator"
        elif health.state == HealthState.UNHEALTHY and health.override != Override.UP:
            down[label] = f"its health checks fail ({health.reason or 'unhealthy'})"
    return down


def _pct(ratio: float) -> str:
    return f"{ratio * 100:.0f}%"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def recommend(now: datetime, live: Combined | None = None) -> list[Recommendation]:
    """Every rule's findings, the most severe first."""
    found: list[Recommendation] = []
    series = _series(now - WINDOW, now)
    down = _down_backends()
    open_breakers = {key: value for key, value in (live.breakers.items() if live else []) if value == 2}
    breaker_opens = live.totals.breaker_opens if live else {}

    by_route: dict[str, Agg] = defaultdict(Agg)
    backends_of: dict[str, dict[str, Agg]] = defaultdict(dict)
    for (route, backend), agg in series.items():
        if not route:
            continue
        by_route[route].merge(agg)
        if backend:
            backends_of[route][backend] = agg

    for route, agg in sorted(by_route.items()):
        if agg.count >= MIN_REQUESTS and agg.errors_5xx / agg.count >= ERROR_RATIO:
            found.append(Recommendation("critical", route, _error_text(route, agg, backends_of[route], down,
                                                                       open_breakers, breaker_opens)))

    baseline = _baseline(now - BASELINE, now - WINDOW)
    for route, agg in sorted(by_route.items()):
        p99, base = agg.quantile(0.99), baseline.get(route)
        base_p99 = base.quantile(0.99) if base is not None and base.count >= MIN_REQUESTS else None
        if agg.count >= MIN_REQUESTS and p99 and base_p99 and p99 >= P99_FLOOR and p99 > P99_FACTOR * base_p99:
            slowest = max(backends_of[route].items(), key=lambda item: item[1].quantile(0.99) or 0.0,
                          default=None)
            cause = (f"; backend {slowest[0]} is the slowest (p99 {_ms(slowest[1].quantile(0.99) or 0.0)})"
                     if slowest and len(backends_of[route]) > 1 else "")
            found.append(Recommendation("warning", route, (
                f"route {route}: p99 latency {_ms(p99)} over the last 15 min, {p99 / base_p99:.1f}x its "
                f"baseline of {_ms(base_p99)} over the previous 24 h{cause}.")))

    for backend, why in sorted(down.items()):
        found.append(Recommendation("critical", backend, f"backend {backend} is down: {why}; it gets no traffic "
                                                         "until it recovers."))
    for (route, backend) in sorted(open_breakers):
        if backend not in down:
            found.append(Recommendation("warning", backend, (
                f"backend {backend} of route {route}: circuit breaker open (opened "
                f"{breaker_opens.get((route, backend), 1)} time(s) since the gateway started).")))
    found += _certificate_expiry(now)
    found += [Recommendation(item.finding.severity, item.finding.route or "gateway", item.text)
              for item in advise(now, live, llm="off").items]
    found.sort(key=lambda item: SEVERITIES.index(item.severity))
    return found


def _certificate_expiry(now: datetime) -> list[Recommendation]:
    """A certificate expired (critical) or expiring within three weeks (warning), naming it and its expiry."""
    found = []
    for name, not_after in certificates.expiring(certificates.expiries(), now):
        when = not_after.strftime("%Y-%m-%d %H:%M UTC")
        if not_after <= now:
            found.append(Recommendation("critical", name, (
                f"certificate {name} expired on {when}: clients refuse it; renew it (PUT /api/certificates/{name}/ "
                "with the new chain and key).")))
        else:
            days = (not_after - now).days
            found.append(Recommendation("warning", name, (
                f"certificate {name} expires on {when} (in {days} day(s)): renew it before then (PUT "
                f"/api/certificates/{name}/ with the new chain and key).")))
    return found


def _error_text(route: str, agg: Agg, backends: dict[str, Agg], down: dict[str, str],
                open_breakers: dict[tuple[str, str], int], opens: dict[tuple[str, str], int]) -> str:
    text = f"route {route}: 5xx at {_pct(agg.errors_5xx / agg.count)} over the last 15 min ({agg.errors_5xx} of " \
           f"{agg.count} requests)"
    suspects: list[tuple[float, str, list[str]]] = []
    for backend, figures in backends.items():
        reasons = []
        if opens.get((route, backend)):
            reasons.append(f"its circuit breaker opened {opens[(route, backend)]} time(s)")
        elif (route, backend) in open_breakers:
            reasons.append("its circuit breaker is open")
        if backend in down:
            reasons.append(down[backend])
        ratio = figures.errors_5xx / figures.count if figures.count else 0.0
        if ratio >= ERROR_RATIO:
            reasons.append(f"5xx at {_pct(ratio)} of its requests")
        if reasons:
            suspects.append((ratio + len(reasons), backend, reasons))
    if not suspects:
        return text + "; no single backend stands out."
    _, backend, reasons = max(suspects)
    return text + f"; backend {backend}: {', '.join(reasons)}: {backend} is the likely cause."
