"""Rolling raw 10-second points up into 1 min, 5 min, 1 h and 1 d series, and applying the retention policy.

`rollup(resolution)` is resumable and idempotent: it continues from the resolution's FillState marker, and for
each batch of target buckets it recomputes every bucket whole from the finer resolution, replaces the rows of
those buckets and moves the marker, all in one transaction. A crash loses at most the batch in progress (which
the next run redoes); a retry finds the marker moved and does nothing twice.

A bucket is rolled up only once its sources are final: it ended SETTLE ago (late flushes from the gateways),
the finer resolution's own marker has passed it (for 5m, 1h, 1d), and, with Redis, no older bucket is still
waiting to be ingested. Consumers' points and LLM spend points (metrics.llm_points) are rolled up in the same
transaction as the route series of the same buckets, under the same marker, and pruned by the same retention.
Celery runs `run_all` every few seconds (metrics.tasks); `manage.py rollup` runs the same without a broker.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from metrics import llm_points
from metrics.aggregates import Agg, ConsumerSeriesKey, SeriesKey
from metrics.models import (
    DEFAULT_RETENTION_DAYS,
    RESOLUTION_SECONDS,
    ROLLUP_SOURCE,
    ConsumerRawPoint,
    ConsumerRollupPoint,
    FillState,
    RawPoint,
    RetentionPolicy,
    RollupPoint,
)

ROLLUPS = ("1m", "5m", "1h", "1d")
# How long after a bucket's end its sources may still change (gateways flush raw points every few seconds).
SETTLE = {"1m": timedelta(seconds=25), "5m": timedelta(0), "1h": timedelta(0), "1d": timedelta(0)}
BATCH_BUCKETS = 500  # target buckets per transaction


@dataclass
class RollupRun:
    resolution: str
    buckets: int = 0
    rows: int = 0
    filled_until: datetime | None = None


def floor(moment: datetime, seconds: int) -> datetime:
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


def source_rows(resolution: str):
    """The QuerySet of points of a resolution (raw points for "10s")."""
    if resolution == "10s":
        return RawPoint.objects.all()
    return RollupPoint.objects.filter(resolution=resolution)


def consumer_rows(resolution: str):
    """The QuerySet of consumers' points of a resolution (raw points for "10s")."""
    if resolution == "10s":
        return ConsumerRawPoint.objects.all()
    return ConsumerRollupPoint.objects.filter(resolution=resolution)


def _source_limit(resolution: str, now: datetime, pending_before: datetime | None) -> datetime | None:
    """Until when the sources of `resolution` are final (None: nothing known yet)."""
    source = ROLLUP_SOURCE[resolution]
    if source == "10s":
        limit = now - SETTLE[resolution]
        if pending_before is not None:
            limit = min(limit, pending_before)
        return limit
    marker = FillState.objects.filter(resolution=source).values_list("filled_until", flat=True).first()
    return marker


def rollup(resolution: str, now: datetime | None = None, *, pending_before: datetime | None = None,
           max_batches: int = 100) -> RollupRun:
    """Fill `resolution` as far as its sources are final (see the module docstring). `pending_before`: the
    oldest bucket still waiting in Redis, when there is one."""
    if resolution not in ROLLUP_SOURCE:
        raise ValueError(f"unknown rollup resolution {resolution!r}; use one of {', '.join(ROLLUPS)}")
    now = now or timezone.now()
    step = RESOLUTION_SECONDS[resolution]
    run = RollupRun(resolution)
    limit = _source_limit(resolution, now, pending_before)
    if limit is None:
        return run
    end_limit = floor(limit, step)  # the first bucket that may not be complete yet
    source = ROLLUP_SOURCE[resolution]
    for _ in range(max_batches):  # bounded: a run after a long outage resumes next time
        marker = FillState.objects.filter(resolution=resolution).values_list("filled_until", flat=True).first()
        if marker is None:
            firsts = [rows.aggregate(first=Min("start"))["first"]
                      for rows in (source_rows(source), llm_points.spend_rows(source))]
            first = min((moment for moment in firsts if moment is not None), default=None)
            if first is None:
                return run
            marker = floor(first, step)
        if marker >= end_limit:
            break
        batch_end = min(end_limit, marker + timedelta(seconds=step * BATCH_BUCKETS))
        run.rows += _fill(resolution, source, marker, batch_end, step)
        run.buckets += int((batch_end - marker).total_seconds()) // step
        run.filled_until = batch_end
    return run


def _fill(resolution: str, source: str, start: datetime, end: datetime, step: int) -> int:
    """Recompute every bucket of [start, end) from the source and move the marker, in one transaction."""
    with transaction.atomic():
        # Lock the marker row (created when missing) so that two runs never fill the same range at once.
        state, _ = FillState.objects.get_or_create(resolution=resolution, defaults={"filled_until": start})
        state = FillState.objects.select_for_update().get(pk=state.pk)
        if state.filled_until > start:
            return 0  # another run got here first
        totals: dict[tuple[datetime, SeriesKey], Agg] = defaultdict(Agg)
        for row in source_rows(source).filter(start__gte=start, start__lt=end).iterator(chunk_size=2000):
            totals[(floor(row.start, step), (row.route, row.backend))].merge(Agg.from_row(row))
        RollupPoint.objects.filter(resolution=resolution, start__gte=start, start__lt=end).delete()
        RollupPoint.objects.bulk_create([
            RollupPoint(resolution=resolution, start=bucket, route=route, backend=backend, **agg.as_dict())
            for (bucket, (route, backend)), agg in totals.items()
        ], batch_size=1000)
        consumers: dict[tuple[datetime, ConsumerSeriesKey], Agg] = defaultdict(Agg)
        for row in consumer_rows(source).filter(start__gte=start, start__lt=end).iterator(chunk_size=2000):
            consumers[(floor(row.start, step), (row.consumer, row.route))].merge(Agg.from_consumer_row(row))
        ConsumerRollupPoint.objects.filter(resolution=resolution, start__gte=start, start__lt=end).delete()
        ConsumerRollupPoint.objects.bulk_create([
            ConsumerRollupPoint(resolution=resolution, start=bucket, consumer=consumer, route=route,
                                **agg.consumer_dict())
            for (bucket, (consumer, route)), agg in consumers.items()
        ], batch_size=1000)
        spent = llm_points.fill(resolution, source, start, end, step)
        state.filled_until = end
        state.save(update_fields=["filled_until", "updated_at"])
    return len(totals) + len(consumers) + spent


def run_all(now: datetime | None = None, *, pending_before: datetime | None = None) -> list[RollupRun]:
    """Every rollup, finest first (each coarser one reads the one before)."""
    now = now or timezone.now()
    return [rollup(resolution, now, pending_before=pending_before) for resolution in ROLLUPS]


def retention_days() -> dict[str, int | None]:
    """The policy per resolution: the operator's rows, with the defaults for any row missing."""
    days = dict(DEFAULT_RETENTION_DAYS)
    days.update(dict(RetentionPolicy.objects.values_list("resolution", "keep_days")))
    return days


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    """Delete the points older than their resolution's retention; returns how many per resolution.

    A point is kept, whatever the policy, until the next coarser rollup has used it.
    """
    now = now or timezone.now()
    markers = dict(FillState.objects.values_list("resolution", "filled_until"))
    coarser = {source: target for target, source in ROLLUP_SOURCE.items()}
    deleted: dict[str, int] = {}
    for resolution, days in retention_days().items():
        if days is None:
            continue
        cutoff = now - timedelta(days=days)
        if resolution in coarser:
            used_until = markers.get(coarser[resolution])
            cutoff = min(cutoff, used_until) if used_until is not None else None  # type: ignore[assignment]
        if cutoff is None:
            continue
        deleted[resolution] = (source_rows(resolution).filter(start__lt=cutoff).delete()[0]
                               + consumer_rows(resolution).filter(start__lt=cutoff).delete()[0]
                               + llm_points.spend_rows(resolution).filter(start__lt=cutoff).delete()[0])
    return deleted
