"""The detection run (`detect`): for each http route with an `abuse` block, judge its clients' recent windows,
record or extend verdicts, learn personalized limits; then delete windows older than the baselines need.

Run by the Celery task `metrics.detect_abuse` every RUSTA_ABUSE_INTERVAL_S and by `manage.py detect_abuse`.
Idempotent: a window judged twice extends the same verdict. Within RUSTA_ABUSE_BUDGET_S: past it, the run logs
the routes it left for the next one and stops. Each run starts one route further on in name order than the run
before it (the turn follows the run's time, so it needs no state and agrees across workers): a run that stops
early never leaves the same routes unjudged every time.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from metrics.abuse import limits
from metrics.abuse.features import COLUMNS, ClientWindowFeatures, merge_rows
from metrics.abuse.forest import ROBUST_VERSION, forests
from metrics.abuse.scoring import Baseline, Population
from metrics.abuse.signatures import Finding, match
from metrics.abuse.verdicts import record_finding
from metrics.models import ClientLimit, ClientWindow, Verdict
from protocols.abuse.config import AbusePolicy
from protocols.block_errors import BlockError
from routes.models import Route

log = logging.getLogger(__name__)

# The gateway counts the clients past its per-window cap under this name: many clients, not one, never judged.
OVERFLOW_CLIENT = "overflow"


@dataclass(slots=True)
class RouteRun:
    """What one run did on one route."""

    route: str
    clients: int = 0
    judged: int = 0
    model_version: str = ROBUST_VERSION
    findings: list[tuple[str, str, datetime]] = field(default_factory=list)  # (client, kind, window start)
    created: int = 0
    extended: int = 0
    limits: int = 0


@dataclass(slots=True)
class DetectionRun:
    """What one run did: per route, the windows deleted, and the routes left for the next run (over budget)."""

    routes: list[RouteRun] = field(default_factory=list)
    deleted: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def created(self) -> int:
        return sum(run.created for run in self.routes)

    @property
    def extended(self) -> int:
        return sum(run.extended for run in self.routes)


def guarded_routes() -> list[tuple[Route, AbusePolicy]]:
    """The enabled http routes with an enabled `abuse` block, by name."""
    found = []
    for route in Route.objects.filter(enabled=True, protocol="http", abuse__isnull=False).order_by("name"):
        try:
            policy = AbusePolicy.from_config(route.abuse)
        except BlockError as exc:  # saved before a check existed: the route's page names the problem
            log.warning("route %s: its abuse block cannot be compiled (%s); not judged", route.name, exc)
            continue
        if policy is not None:
            found.append((route, policy))
    return found


def _verdict_spans(route: str, since: datetime) -> dict[str, list[tuple[datetime, datetime]]]:
    spans: dict[str, list[tuple[datetime, datetime]]] = {}
    for client, start, end in Verdict.objects.filter(route=route, window_end__gte=since).values_list(
            "client", "window_start", "window_end"):
        spans.setdefault(client, []).append((start, end))
    return spans


def _under(window: ClientWindowFeatures, spans: list[tuple[datetime, datetime]]) -> bool:
    return any(start <= window.start < end for start, end in spans)


def judge_route(route: Route, policy: AbusePolicy, now: datetime, interval_s: float, baseline_s: float,
                retrain_s: float) -> RouteRun:
    """One route's run: its windows of the last `baseline_s` merged; those that started within the last
    interval plus two windows (the gateways flush every few seconds) judged against the older ones."""
    run = RouteRun(route.name)
    horizon = now - timedelta(seconds=baseline_s)
    rows = (ClientWindow.objects.filter(route=route.name, start__gte=horizon, start__lte=now)
            .values_list(*COLUMNS, named=True))
    by_client = merge_rows(rows)
    by_client.pop(OVERFLOW_CLIENT, None)
    run.clients = len(by_client)
    if not by_client:
        return run
    window_s = max(windows[-1].window_s for windows in by_client.values())
    judged_from = now - timedelta(seconds=interval_s + 2 * window_s)
    spans = _verdict_spans(route.name, horizon)
    history: dict[str, list[ClientWindowFeatures]] = {}
    recent: dict[str, list[ClientWindowFeatures]] = {}
    for client, windows in by_client.items():
        mine = spans.get(client, [])
        history[client] = [w for w in windows if w.start < judged_from and not _under(w, mine)]
        recent[client] = [w for w in windows if w.start >= judged_from]
    crowd = Population(w for windows in history.values() for w in windows)
    if crowd.learning:
        return run
    forest = forests.for_route(route.name, [w for ws in history.values() for w in ws], now, retrain_s)
    run.model_version = forest.version if forest is not None else ROBUST_VERSION
    judged = [w for windows in recent.values() for w in windows]
    isolation = dict(zip(map(id, judged), forest.isolation(judged), strict=True)) if forest else {}
    strongest: dict[tuple[str, str], Finding] = {}
    for client, windows in recent.items():
        if not windows:
            continue
        own = Baseline(history[client])
        everything = by_client[client]
        for window in windows:
            run.judged += 1
            previous = [w for w in everything if w.start < window.start]
            for finding in match(window, previous, own, crowd, threshold=policy.threshold,
                                 signatures=policy.signatures, isolation=isolation.get(id(window))):
                run.findings.append((client, finding.kind, window.start))
                key = (client, finding.kind)
                best = strongest.get(key)
                # The latest window's finding carries the episode forward; a stronger earlier one its reasons.
                if best is None or finding.window.start >= best.window.start:
                    strongest[key] = finding
    for finding in strongest.values():
        outcome = record_finding(route.name, policy, finding, run.model_version, now)
        run.created += outcome == "created"
        run.extended += outcome == "extended"
    if policy.personalized_limits:
        run.limits = limits.learn_limits(route.name, policy, route.rate_limit, history)
    return run


def delete_old_windows(now: datetime, baseline_s: float) -> int:
    """Windows older than the baselines' horizon are no longer read: deleted."""
    deleted, _ = ClientWindow.objects.filter(start__lt=now - timedelta(seconds=baseline_s)).delete()
    return deleted


def detect(now: datetime | None = None, *, interval_s: float | None = None, budget_s: float | None = None,
           clock: Callable[[], float] = time.monotonic) -> DetectionRun:
    """One detection run as of `now` (default: the current time); see the module's docstring."""
    now = now or timezone.now()
    interval = settings.RUSTA_ABUSE_INTERVAL_S if interval_s is None else interval_s
    budget = settings.RUSTA_ABUSE_BUDGET_S if budget_s is None else budget_s
    baseline_s = settings.RUSTA_ABUSE_BASELINE_S
    began = clock()
    result = DetectionRun()
    routes = guarded_routes()
    if routes:
        turn = int(now.timestamp() // max(interval, 1.0)) % len(routes)
        routes = routes[turn:] + routes[:turn]
    for index, (route, policy) in enumerate(routes):
        if clock() - began > budget:
            result.skipped = [r.name for r, _ in routes[index:]]
            log.warning("abuse detection over its %.1f s budget: routes %s left for the next run", budget,
                        ", ".join(result.skipped))
            break
        result.routes.append(judge_route(route, policy, now, interval, baseline_s,
                                         settings.RUSTA_ABUSE_RETRAIN_S))
    kept = {route.name for route, policy in routes if policy.personalized_limits}
    ClientLimit.objects.exclude(route__in=kept).delete()  # routes that no longer learn limits
    result.deleted = delete_old_windows(now, baseline_s)
    return result
