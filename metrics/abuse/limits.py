"""Personalized limits: each client's ClientLimit on a route with `personalized_limits`, learned from its normal
windows (those under no verdict), upserted on every detection run; a client with no window left in the history
(none for RUSTA_ABUSE_BASELINE_S) loses its limit, and learns a new one if it comes back."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import ceil
from typing import Any

import numpy as np

from metrics.abuse.features import ClientWindowFeatures
from metrics.models import ClientLimit
from protocols.abuse.config import AbusePolicy
from protocols.block_errors import BlockError
from protocols.limits.config import RateLimitPolicy

MIN_LEARNING_WINDOWS = 30  # a client's windows before it gets a limit of its own (5 minutes of 10 s windows)
LEARNING_QUANTILE = 0.99  # of its requests per window, times the route's personalized_headroom
FLOOR_PER_SECOND = 1.0  # no personalized limit below one request per second
_DELETE_BATCH = 500  # clients per DELETE (SQLite's bound on a statement's parameters)


def learned_limit(windows: Sequence[ClientWindowFeatures], policy: AbusePolicy,
                  limit_window_s: float | None) -> tuple[int, float] | None:
    """(limit, window_s) from a client's normal windows, or None with too few of them. The quantile of its
    requests per window, times the headroom, at least the floor, scaled to the route's rate-limit window when it
    has one (else per detection window)."""
    if len(windows) < MIN_LEARNING_WINDOWS:
        return None
    window_s = windows[-1].window_s
    per_window = float(np.quantile([w.requests for w in windows], LEARNING_QUANTILE)) * policy.personalized_headroom
    per_window = max(per_window, FLOOR_PER_SECOND * window_s)
    target = limit_window_s or window_s
    return ceil(per_window * target / window_s), target


def rate_limit_window(block: Any) -> float | None:
    """The route's rate-limit window in seconds; None without a (valid) rate_limit block."""
    if not block:
        return None
    try:
        return RateLimitPolicy.from_config(block).window_s
    except BlockError:
        return None


def learn_limits(route: str, policy: AbusePolicy, rate_limit: Any,
                 normal: Mapping[str, Sequence[ClientWindowFeatures]]) -> int:
    """Upsert the ClientLimit of every client with enough normal windows, and delete those of clients with no
    window in `normal` (gone for the whole history); returns how many changed."""
    limit_window = rate_limit_window(rate_limit)
    existing = {row.client: row for row in ClientLimit.objects.filter(route=route)}
    changed = 0
    for client, windows in normal.items():
        learned = learned_limit(windows, policy, limit_window)
        if learned is None:
            continue
        limit, window_s = learned
        row = existing.get(client)
        if row is not None and (row.limit, row.window_s, row.learned_from) == (limit, window_s, len(windows)):
            continue
        ClientLimit.objects.update_or_create(route=route, client=client, defaults={
            "limit": limit, "window_s": window_s, "learned_from": len(windows)})
        changed += 1
    gone = [client for client in existing if client not in normal]
    for start in range(0, len(gone), _DELETE_BATCH):
        deleted, _ = ClientLimit.objects.filter(route=route, client__in=gone[start:start + _DELETE_BATCH]).delete()
        changed += deleted
    return changed
