"""Celery tasks of the metrics app: each one is a single call into a plain function a command can also run, then
a heartbeat (metrics.background) that tells the gateways the background work is running."""
from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.utils.dateparse import parse_datetime

from metrics import llm_spend, timeseries
from metrics.background import heartbeat
from protocols.llm.budgets import StoreUnavailable
from routes.health import checks

log = logging.getLogger(__name__)


# The health checks are routes' (routes.health.checks); the task stays here, under its registered name, because
# it ends with this app's heartbeat and a running beat may still send "metrics.run_health_checks".
@shared_task(name="metrics.run_health_checks", ignore_result=True)
def run_health_checks(now: str | None = None) -> int:
    """Probe the backends that are due (beat sends this every second); returns how many were probed.

    `now` is an ISO datetime for a replayed run; without it the current time is used.
    """
    probed = len(checks.probe_due_backends(now=parse_datetime(now) if now else None).outcomes)
    heartbeat.beat()
    return probed


@shared_task(name="metrics.rollup", ignore_result=True)
def rollup(now: str | None = None) -> int:
    """Ingest closed buckets from Redis (when configured), then fill every rollup; returns buckets filled."""
    filled = sum(run.buckets for run in timeseries.ingest_and_rollup(now=parse_datetime(now) if now else None))
    heartbeat.beat()
    return filled


@shared_task(name="metrics.apply_retention", ignore_result=True)
def apply_retention(now: str | None = None) -> int:
    """Delete the points past their resolution's retention; returns how many."""
    deleted = sum(timeseries.apply_retention(now=parse_datetime(now) if now else None).values())
    heartbeat.beat()
    return deleted


@shared_task(name="metrics.persist_llm_spend", ignore_result=True)
def persist_llm_spend(now: str | None = None) -> int:
    """Copy the LLM token limits' and budgets' day-or-longer counters from Redis to the database, and raise back
    those Redis lost (beat sends this every 10 s when REDIS_URL is set; without it each gateway process writes
    its own); returns how many counters were read. Redis away: logged, the next run copies."""
    moment = parsed.timestamp() if now and (parsed := parse_datetime(now)) else None
    read = 0
    if settings.REDIS_URL:
        try:
            read = llm_spend.persist_redis_spend(settings.REDIS_URL, now=moment).read
        except StoreUnavailable as exc:
            log.warning("could not read the LLM spend counters from Redis (the next run will): %s", exc)
    heartbeat.beat()
    return read


@shared_task(name="metrics.detect_abuse", ignore_result=True)
def detect_abuse(now: str | None = None) -> int:
    """Judge the clients of the routes with an `abuse` block (metrics.abuse.detection; beat sends this every
    RUSTA_ABUSE_INTERVAL_S); returns how many verdicts were created."""
    from metrics.abuse.detection import detect  # scikit-learn, loaded by the worker only when it detects

    created = detect(parse_datetime(now) if now else None).created
    heartbeat.beat()
    return created
