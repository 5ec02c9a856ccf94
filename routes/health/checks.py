"""Active health checks: probe the backends that are due, apply the thresholds, record, and publish changes.

`probe_due_backends` is the one entry point; Celery beat runs it every second through metrics.tasks and
`manage.py healthcheck` runs it without a broker. It is idempotent: a backend is claimed (its `last_probe_at`
moved to now with a compare-and-set) before it is probed, so a second run, on the same or another worker,
finds nothing due until the route's interval has passed again. When any backend's effective health changed,
the health version is bumped and every gateway process reloads its overlay within its poll interval.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from routes.health import grpc_health
from routes.health.models import BackendHealth, HealthEvent, HealthProbe, HealthState
from routes.health.probes import ProbeOutcome, ProbeTarget, TlsOptions, run_probes
from routes.models import Backend
from routes.resilience_blocks import health_check_settings
from routes.services import bump_health_version

log = logging.getLogger(__name__)

# Probed over HTTP: a WebSocket backend's health URL is plain HTTP(S) on the same host and port.
PROBE_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}
# A backend counts as due this much before its interval has fully passed, so that a 1 s beat whose ticks
# arrive a few milliseconds early does not skip every other probe.
DUE_SLACK = timedelta(milliseconds=250)


@dataclass(frozen=True)
class StateChange:
    backend_id: int
    from_state: str
    to_state: str
    reason: str
    backend_url: str = ""
    route: str = ""

    @property
    def subject(self) -> str:
        """The backend as an operator knows it: its URL and route (ids mean nothing in a log line)."""
        return f"backend {self.backend_url or self.backend_id} of route {self.route or '?'}"


@dataclass
class HealthRun:
    """What one run did: the probes it made, the state changes they caused, and whether gateways were told."""

    outcomes: list[ProbeOutcome] = field(default_factory=list)
    changes: list[StateChange] = field(default_factory=list)
    published: bool = False


@dataclass(frozen=True)
class _Due:
    target: ProbeTarget
    healthy_threshold: int
    unhealthy_threshold: int
    backend_url: str = ""
    route: str = ""


def probe_url(backend: Backend) -> str:
    """The URL a backend's probe asks: its health path, or gRPC's health method on a grpc route."""
    host = f"[{backend.host}]" if ":" in backend.host else backend.host
    path = grpc_health.CHECK_PATH if backend.route.protocol == "grpc" else backend.health_check_path
    return f"{PROBE_SCHEMES[backend.scheme]}://{host}:{backend.port}{path}"


def probe_target(backend: Backend, timeout: float, healthy_statuses: frozenset[int] | None) -> ProbeTarget:
    """How a backend is probed: the one place that picks HTTP or gRPC (by its route's protocol) and TLS options."""
    grpc_service = grpc_health.service_name(backend.health_check_path or "/") if backend.route.protocol == "grpc" \
        else None
    tls = backend.tls or {}
    return ProbeTarget(backend.pk, probe_url(backend), timeout, healthy_statuses, grpc_service,
                       TlsOptions(tls.get("ca", ""), tls.get("server_name", ""), tls.get("verify", True)))


def _checked_backends() -> Q:
    """Backends that get active checks: enabled, on an enabled route, HTTP-like, with a health path."""
    return (Q(enabled=True, route__enabled=True, scheme__in=list(PROBE_SCHEMES))
            & Q(health_check_path__isnull=False) & ~Q(health_check_path=""))


def checked_backends() -> QuerySet[Backend]:
    """The backends the active checks probe (see `_checked_backends`)."""
    return Backend.objects.filter(_checked_backends())


def _claim_due(now: datetime) -> list[_Due]:
    """The backends whose interval has passed, each claimed for this run (see the module docstring)."""
    backends = list(Backend.objects.filter(_checked_backends()).select_related("route", "health"))
    missing = [BackendHealth(backend=b) for b in backends if not _has_health(b)]
    if missing:
        BackendHealth.objects.bulk_create(missing, ignore_conflicts=True)
    due: list[_Due] = []
    for backend in backends:
        config = health_check_settings(backend.route.health_check)
        last = backend.health.last_probe_at if _has_health(backend) else None
        if last is not None and now < last + timedelta(seconds=config["interval_s"]) - DUE_SLACK:
            continue
        claim = BackendHealth.objects.filter(pk=backend.pk)
        claim = claim.filter(last_probe_at__isnull=True) if last is None else claim.filter(last_probe_at=last)
        if not claim.update(last_probe_at=now):
            continue  # another run claimed it first
        statuses = config["healthy_statuses"]
        due.append(_Due(
            probe_target(backend, config["timeout_ms"] / 1000, frozenset(statuses) if statuses else None),
            config["healthy_threshold"], config["unhealthy_threshold"], backend.url, backend.route.name,
        ))
    return due


def _has_health(backend: Backend) -> bool:
    try:
        backend.health  # noqa: B018 (the reverse one-to-one raises when there is no row)
    except BackendHealth.DoesNotExist:
        return False
    return True


def apply_outcome(health: BackendHealth, outcome: ProbeOutcome, *, healthy_threshold: int,
                  unhealthy_threshold: int) -> tuple[str, str] | None:
    """Count the outcome into `health` (unsaved); returns (from, to) when the state changes.

    Unknown becomes healthy on the first success (it already got traffic) and unhealthy after
    `unhealthy_threshold` consecutive failures; unhealthy becomes healthy after `healthy_threshold` consecutive
    successes. While unhealthy, `reason` follows the latest failure.
    """
    before = health.state
    if outcome.ok:
        health.consecutive_successes += 1
        health.consecutive_failures = 0
        if before == HealthState.UNKNOWN or (
                before == HealthState.UNHEALTHY and health.consecutive_successes >= healthy_threshold):
            health.state = HealthState.HEALTHY
    else:
        health.consecutive_failures += 1
        health.consecutive_successes = 0
        if before != HealthState.UNHEALTHY and health.consecutive_failures >= unhealthy_threshold:
            health.state = HealthState.UNHEALTHY
        elif before == HealthState.UNHEALTHY:
            health.reason = outcome.text
    if health.state == before:
        return None
    health.reason = outcome.text
    return before, health.state


def _record(due: _Due, outcome: ProbeOutcome, now: datetime, keep: int) -> tuple[StateChange | None, bool]:
    """Store one outcome and its consequences atomically; returns (state change, effective health changed)."""
    with transaction.atomic():
        health = BackendHealth.objects.select_for_update().filter(pk=outcome.backend_id).first()
        if health is None:
            return None, False  # the backend was deleted while it was being probed
        was_effective = health.effective
        moved = apply_outcome(health, outcome, healthy_threshold=due.healthy_threshold,
                              unhealthy_threshold=due.unhealthy_threshold)
        if moved:
            health.last_change_at = now
        health.save()
        HealthProbe.objects.create(
            backend_id=outcome.backend_id, at=now, ok=outcome.ok, status_code=outcome.status_code,
            latency_ms=outcome.latency_ms, reason=outcome.reason, detail=outcome.detail,
        )
        change = None
        if moved:
            change = StateChange(outcome.backend_id, moved[0], moved[1], outcome.text, due.backend_url, due.route)
            HealthEvent.objects.create(backend_id=outcome.backend_id, at=now, source=HealthEvent.Source.PROBE,
                                       from_state=moved[0], to_state=moved[1], reason=outcome.text)
        prune_history(outcome.backend_id, keep)
    return change, health.effective != was_effective


def prune_history(backend_id: int, keep: int) -> None:
    """Keep only the latest `keep` probes and state changes of a backend."""
    for model in (HealthProbe, HealthEvent):
        rows = model.objects.filter(backend_id=backend_id)
        cutoff = list(rows.order_by("-id").values_list("id", flat=True)[keep:keep + 1])
        if cutoff:
            rows.filter(id__lte=cutoff[0]).delete()


def reset_unchecked(now: datetime) -> int:
    """Forget the probe verdict of backends that are no longer checked (health path removed, disabled).

    Otherwise a backend found unhealthy would stay out of rotation forever once nothing probes it any more.
    Returns how many effective states changed.
    """
    changed = 0
    stale = BackendHealth.objects.exclude(state=HealthState.UNKNOWN).exclude(
        backend__in=Backend.objects.filter(_checked_backends()))
    for backend_id in stale.values_list("pk", flat=True):
        with transaction.atomic():
            health = BackendHealth.objects.select_for_update().filter(pk=backend_id).first()
            if health is None or health.state == HealthState.UNKNOWN:
                continue
            was_effective, before = health.effective, health.state
            health.state, health.reason = HealthState.UNKNOWN, "not checked"
            health.consecutive_successes = health.consecutive_failures = 0
            health.last_probe_at, health.last_change_at = None, now
            health.save()
            HealthEvent.objects.create(backend_id=backend_id, at=now, source=HealthEvent.Source.RESET,
                                       from_state=before, to_state=HealthState.UNKNOWN, reason="not checked")
            changed += health.effective != was_effective
    return changed


def probe_due_backends(now: datetime | None = None, *, transport: httpx.AsyncBaseTransport | None = None,
                       timer: Callable[[], float] | None = None, keep: int | None = None) -> HealthRun:
    """Probe every backend that is due, concurrently, and apply and publish the results (see the docstring)."""
    now = now or timezone.now()
    keep = settings.RUSTA_HEALTH_HISTORY if keep is None else keep
    run = HealthRun()
    effective_changed = reset_unchecked(now) > 0
    due = _claim_due(now)
    by_backend = {item.target.backend_id: item for item in due}
    run.outcomes = run_probes([item.target for item in due], transport, timer or time.perf_counter)
    for outcome in run.outcomes:
        change, flipped = _record(by_backend[outcome.backend_id], outcome, now, keep)
        effective_changed = effective_changed or flipped
        if change is not None:
            run.changes.append(change)
            log.warning("%s is now %s: %s", change.subject, change.to_state, change.reason)
    if effective_changed:
        bump_health_version()
        run.published = True
    return run


def describe(run: HealthRun) -> Sequence[str]:
    """Lines for a human: one per state change."""
    return [f"{c.subject}: {c.from_state} -> {c.to_state} ({c.reason})" for c in run.changes]
