"""The gateway at a glance: each route's traffic, errors and p99 with its backends' health, active and passive.

The admin home (templates/admin/index.html, through metrics.templatetags.gateway_overview) and the backend
health list read the same three sources: the stored traffic series (metrics.queries.series_totals), the active
checks' rows (routes.health.models.BackendHealth) and what every gateway worker reports about its circuit breakers
and failed connection attempts (metrics.procfiles, as /metrics and the dashboard read it). Building the
overview costs the same handful of queries whatever the number of routes.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Prefetch

from metrics.aggregates import Agg, SeriesKey
from metrics.procfiles import Combined
from metrics.queries import floor, series_totals
from metrics.recommendations import Recommendation, recommend
from metrics.views import combined_figures
from routes.models import Backend, BackendHealth, HealthState, Override, Route

WINDOW = timedelta(hours=1)  # the traffic figures of the admin home
RECENT = timedelta(minutes=5)  # "recent" errors of the backend health list
SHOWN_ROUTES = 25  # routes listed on the admin home; those with problems come first
SHOWN_RECOMMENDATIONS = 3
ERROR_RATIO = 0.05  # a route whose 5xx share reaches this is listed among the problems
BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}  # procfiles' values

# A backend's health in one word, as the admin home counts them (in this order).
DOWN, BREAKER_OPEN, UP, UNKNOWN, DISABLED = "down", "breaker open", "up", "unknown", "disabled"
VERDICTS = (DOWN, BREAKER_OPEN, UP, UNKNOWN, DISABLED)


def backend_label(backend: Backend) -> str:
    """`host:port` (IPv6 in brackets): how the gateway's figures and breakers name a backend."""
    return backend.url.split("://", 1)[1]


@dataclass(frozen=True)
class Passive:
    """What the gateway workers report about one backend of one route (the passive health check).

    `breaker` is None until a worker has sent the route traffic; `failures` are failed connection attempts by
    kind (refused, dns, reset, timeout, invalid) since the gateway started, over every route using the backend.
    """

    breaker: str | None
    opens: int
    failures: dict[str, int]
    recent: Agg


class PassiveBoard:
    """The passive state of every backend, from one read of the workers' figures and one of the series."""

    def __init__(self, combined: Combined, series: dict[SeriesKey, Agg]) -> None:
        self.combined = combined
        self.series = series
        self._failures: dict[str, dict[str, int]] = {}
        for (label, kind), count in combined.totals.upstream_errors.items():
            self._failures.setdefault(label, {})[kind] = count

    @classmethod
    def load(cls, now: datetime, window: timedelta) -> PassiveBoard:
        return cls(combined_figures(), series_totals(floor(now - window, 60), now))

    def of(self, route: str, backend: Backend) -> Passive:
        label = backend_label(backend)
        state = self.combined.breakers.get((route, label))
        return Passive(
            breaker=None if state is None else BREAKER_STATES.get(state, "closed"),
            opens=self.combined.totals.breaker_opens.get((route, label), 0),
            failures=dict(sorted(self._failures.get(label, {}).items())),
            recent=self.series.get((route, label)) or Agg(),
        )


def health_of(backend: Backend) -> BackendHealth | None:
    """The backend's active-check row, when it has one (read through select_related, no query)."""
    try:
        return backend.health
    except BackendHealth.DoesNotExist:
        return None


def verdict(backend: Backend, health: BackendHealth | None, passive: Passive) -> tuple[str, str]:
    """(one of VERDICTS, why). Active checks and overrides decide first, as they do for the traffic; then an
    open breaker; a backend without a verdict of its own is up when it answered traffic in the window."""
    if not backend.enabled or not backend.route.enabled:
        return DISABLED, "disabled"
    if health is not None and not health.effective:
        if health.override == Override.DOWN:
            return DOWN, "forced down"
        return DOWN, f"health checks fail ({health.reason or 'unhealthy'})"
    if passive.breaker in ("open", "half-open"):
        return BREAKER_OPEN, f"circuit breaker {passive.breaker}"
    if health is not None and health.override == Override.UP:
        return UP, "forced up"
    if health is not None and health.state == HealthState.HEALTHY:
        return UP, "health checks pass"
    if passive.recent.count > passive.recent.errors_gateway:
        return UP, "answering traffic"
    if backend.health_check_path:
        return UNKNOWN, "not probed yet"
    return UNKNOWN, "no health check and no traffic"


def percent(part: int, whole: int) -> str:
    if not whole:
        return "–"
    ratio = part / whole * 100
    return f"{ratio:.1f}%" if ratio < 10 else f"{ratio:.0f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


@dataclass
class BackendLine:
    url: str
    verdict: str
    why: str


@dataclass
class RouteLine:
    """One route on the admin home."""

    name: str
    protocol: str
    enabled: bool
    requests: int
    errors_5xx: int
    error_rate: str
    p99: str
    counts: list[tuple[str, int]]  # (verdict, how many backends), in VERDICTS order, zeros left out
    problems: list[BackendLine]  # backends down or with an open breaker

    @property
    def troubled(self) -> bool:
        return bool(self.problems) or (self.requests > 0 and self.errors_5xx / self.requests >= ERROR_RATIO)


@dataclass
class Overview:
    """Everything the admin home shows above the app list."""

    window: str
    routes: list[RouteLine] = field(default_factory=list)
    route_count: int = 0
    more: int = 0  # routes not listed
    requests: int = 0
    error_rate: str = "–"
    p99: str = "–"
    backends: list[tuple[str, int]] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)
    more_recommendations: int = 0
    workers: int = 0


def build(now: datetime, *, window: timedelta = WINDOW, shown: int = SHOWN_ROUTES) -> Overview:
    """The overview at `now`: routes (with backends and their health rows) in two queries, the series in at
    most three, the recommendations in three."""
    routes = list(Route.objects.order_by("name").prefetch_related(
        Prefetch("backends", queryset=Backend.objects.select_related("health"))))
    board = PassiveBoard.load(now, window)
    overview = Overview(window=_window_text(window), route_count=len(routes), workers=board.combined.workers)
    by_route: dict[str, Agg] = {}
    for (name, _backend), agg in board.series.items():
        by_route.setdefault(name, Agg()).merge(agg)
    everything = Agg()
    all_counts: Counter[str] = Counter()
    lines = []
    for route in routes:
        traffic = by_route.get(route.name) or Agg()
        everything.merge(traffic)
        counts: Counter[str] = Counter()
        problems = []
        for backend in route.backends.all():
            backend.route = route  # the verdict reads route.enabled
            word, why = verdict(backend, health_of(backend), board.of(route.name, backend))
            counts[word] += 1
            if word in (DOWN, BREAKER_OPEN):
                problems.append(BackendLine(backend.url, word, why))
        all_counts.update(counts)
        lines.append(RouteLine(
            name=route.name, protocol=route.protocol, enabled=route.enabled, requests=traffic.count,
            errors_5xx=traffic.errors_5xx, error_rate=percent(traffic.errors_5xx, traffic.count),
            p99=duration(traffic.quantile(0.99)), counts=[(word, counts[word]) for word in VERDICTS if counts[word]],
            problems=problems))
    lines.sort(key=lambda line: (not line.troubled, not line.enabled, -line.requests, line.name))
    overview.routes, overview.more = lines[:shown], max(0, len(lines) - shown)
    overview.requests = everything.count
    overview.error_rate = percent(everything.errors_5xx, everything.count)
    overview.p99 = duration(everything.quantile(0.99))
    overview.backends = [(word, all_counts[word]) for word in VERDICTS if all_counts[word]]
    if routes:
        # Information (a timeout that could be lower...) stays on the Advice page: the home shows what needs acting on.
        found = [item for item in recommend(now, board.combined) if item.severity != "info"]
        overview.recommendations = found[:SHOWN_RECOMMENDATIONS]
        overview.more_recommendations = max(0, len(found) - SHOWN_RECOMMENDATIONS)
    return overview


def _window_text(window: timedelta) -> str:
    minutes = int(window.total_seconds() // 60)
    if minutes % 60 == 0:
        hours = minutes // 60
        return "last hour" if hours == 1 else f"last {hours} hours"
    return f"last {minutes} min"
