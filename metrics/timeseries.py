"""The entry points of the stored traffic history that tasks and commands call, wired to this deployment's store
(Redis when REDIS_URL is set, the database otherwise)."""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from metrics import history, rollups


def ingest_and_rollup(now: datetime | None = None) -> list[rollups.RollupRun]:
    """Move closed Redis buckets into raw points (with Redis), then fill every rollup up to what is final."""
    now = now or timezone.now()
    pending_before = None
    if settings.REDIS_URL:
        client = history.redis_client(settings.REDIS_URL)
        try:
            history.ingest_from_redis(client, now)
            pending_before = history.oldest_pending(client)
        finally:
            client.close()
    return rollups.run_all(now, pending_before=pending_before)


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    return rollups.apply_retention(now)
