"""Writes what a gateway process learned (protocols.apidocs.learn) into LearnedOperation rows, merged with what
is stored: several processes write the same rows, so each row is read, merged and saved in one transaction with
the row locked (select_for_update; SQLite serialises writers anyway). A route keeps at most MAX_ROWS_PER_ROUTE
rows: operations beyond it are dropped (the templates were capped per process already)."""
from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from metrics.models import LearnedOperation
from protocols.apidocs.learn import Operation, OperationKey, merge_operation

log = logging.getLogger(__name__)
MAX_ROWS_PER_ROUTE = 1000
CREATED, MERGED = "created", "merged"


def write_operations(operations: dict[OperationKey, Operation], now: datetime | None = None) -> int:
    """Merge `operations` into the stored rows; returns how many rows were written."""
    now = now or timezone.now()
    written = 0
    counts: dict[str, int] = {}
    for key, operation in operations.items():
        route = key[0]
        if route not in counts:
            counts[route] = LearnedOperation.objects.filter(route=route).count()
        outcome = _write_one(key, operation, now, counts[route] >= MAX_ROWS_PER_ROUTE)
        if outcome is not None:
            written += 1
            counts[route] += outcome == CREATED
        else:
            log.info("api_docs: route %s has %d learned operations already; %s %s dropped", route,
                     MAX_ROWS_PER_ROUTE, key[1], key[2])
    return written


def _write_one(key: OperationKey, operation: Operation, now: datetime, full: bool) -> str | None:
    """CREATED or MERGED, or None when the route is `full` and the row would be new."""
    route, method, path, status = key
    for _ in range(2):  # a row another process created meanwhile is merged on the second pass
        with transaction.atomic():
            row = (LearnedOperation.objects.select_for_update()
                   .filter(route=route, method=method, path=path, status=status).first())
            if row is not None:
                row.shape = merge_operation(row.shape, operation)
                row.samples += operation["samples"]
                row.last_seen = now
                row.save(update_fields=["shape", "samples", "last_seen"])
                return MERGED
            if full:
                return None
            try:
                with transaction.atomic():
                    LearnedOperation.objects.create(route=route, method=method, path=path, status=status,
                                                    samples=operation["samples"], shape=operation,
                                                    first_seen=now, last_seen=now)
                return CREATED
            except IntegrityError:
                continue
    return None

