"""The background work's heartbeat: every task run records when it ran, so a gateway can say when it stops.

The time goes into the one-row ConfigState that every gateway process already polls (routes.live), so /health
and /ready report it without a query of their own; the admin's banner reads it too (metrics.context_processors).
"""
from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from django.conf import settings

from protocols.health import BackgroundReport, background_report
from protocols.table import live
from routes.models import ConfigState
from routes.snapshot import current_versions

# At most one write per process this often (seconds): the health-check task runs every second, and each write
# takes the row (and on SQLite the database) for a moment.
HEARTBEAT_EVERY = 5.0


class Heartbeat:
    """Records "background work ran at T" in ConfigState.background_ran_at, throttled to one write per `every`."""

    def __init__(self, clock: Callable[[], float] = time.time, every: float = HEARTBEAT_EVERY) -> None:
        self.clock = clock
        self.every = every
        self.written_at = 0.0

    def beat(self) -> bool:
        """Record that a task just ran; returns whether it wrote (False: a write within `every` seconds)."""
        now = self.clock()
        if self.written_at and now - self.written_at < self.every:
            return False
        ran_at = datetime.fromtimestamp(now, tz=UTC)
        # A queryset update leaves ConfigState.changed_at (auto_now) alone: it dates configuration changes only.
        if not ConfigState.objects.filter(pk=1).update(background_ran_at=ran_at):
            ConfigState.objects.get_or_create(pk=1, defaults={"background_ran_at": ran_at})
        self.written_at = now
        return True


heartbeat = Heartbeat()


def current_report(now: float | None = None) -> BackgroundReport:
    """Whether the background work reported within RUSTA_BACKGROUND_STALE_AFTER seconds, read from the database
    (one query), by the rule /health and /ready use: in a gateway worker, one that just started gives it time to
    report; a process that watches no table (a shell, the test client) judges the last report alone."""
    now = time.time() if now is None else now
    return background_report(current_versions().background_at, live.watching_since, now,
                             stale_after=settings.RUSTA_BACKGROUND_STALE_AFTER)
