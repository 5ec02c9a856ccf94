"""The abuse counters' part of a worker's flusher (metrics.flusher): closed windows to the database, and the table
of sanctions read back from it, both in the flusher's thread.

On the event loop, once a second, `take` hands over the counters' window once it has ended (protocols.abuse.
counters). In the flusher's thread, `work` writes the windows handed over (metrics.abuse.windows; a window whose
write failed is written again on the next round, up to MAX_PENDING of them) and, every `refresh_every` seconds,
reads the sanctions in force for the routes the plan serves now and installs the new table
(metrics.abuse.refresh, protocols.abuse.sanctions). A database that fails is logged and tried again; the
requests meanwhile keep the last table, whose verdicts still expire on time.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from django.db.utils import DatabaseError

from metrics.abuse.refresh import load_table
from metrics.abuse.windows import write_windows
from protocols.abuse.config import AbusePolicy
from protocols.abuse.counters import AbuseCounters, ClosedWindow
from protocols.abuse.sanctions import Sanctions, SanctionTable
from protocols.plan import TablePlan

log = logging.getLogger(__name__)
# Closed windows kept for another try while the database is away; older ones are dropped (and logged).
MAX_PENDING = 60
RoutesWithAbuse = Callable[[], Iterable[tuple[str, AbusePolicy]]]


def no_routes() -> list[tuple[str, AbusePolicy]]:
    return []


def plan_routes(source: Callable[[], TablePlan]) -> RoutesWithAbuse:
    """The routes with an `abuse` block of the plan `source` gives (a DataPlane's current one)."""

    def routes() -> list[tuple[str, AbusePolicy]]:
        return [(plan.route.name, plan.abuse) for plan in source().routes.values() if plan.abuse is not None]

    return routes


class AbuseFlush:
    """See the module docstring. `routes` names the routes with an `abuse` block in the plan served now (read in
    the flusher's thread: the plan is replaced whole, never changed)."""

    def __init__(self, counters: AbuseCounters, sanctions: Sanctions, routes: RoutesWithAbuse = no_routes, *,
                 refresh_every: float = 1.0, clock: Callable[[], float] = time.time,
                 writer: Callable[[Iterable[ClosedWindow], str], int] = write_windows,
                 loader: Callable[[datetime, Iterable[tuple[str, AbusePolicy]]], SanctionTable] = load_table) -> None:
        self.counters = counters
        self.sanctions = sanctions
        self.routes = routes
        self.refresh_every = refresh_every
        self.clock = clock
        self.writer = writer
        self.loader = loader
        self.pending: list[ClosedWindow] = []
        self._last_refresh = 0.0

    def take(self, *, final: bool = False) -> ClosedWindow | None:
        """On the loop: the counters' window once it ended (any window at all when `final`)."""
        return self.counters.take(final=final)

    def work(self, closed: ClosedWindow | None, source: str) -> None:
        """In the flusher's thread: write what is pending, then refresh the sanctions when due."""
        if closed is not None:
            self.pending.append(closed)
            if len(self.pending) > MAX_PENDING:
                dropped = self.pending[:-MAX_PENDING]
                del self.pending[:-MAX_PENDING]
                log.warning("dropped %d abuse counting windows the database did not take", len(dropped))
        if self.pending:
            try:
                self.writer(self.pending, source)
                self.pending = []
            except DatabaseError as exc:
                log.warning("could not write the abuse counting windows (will retry): %s", exc)
        now = self.clock()
        if now - self._last_refresh < self.refresh_every:
            return
        self._last_refresh = now
        self.refresh(now)

    def refresh(self, now: float) -> None:
        """Read the sanctions in force and install them (keeps the last table when the database fails)."""
        try:
            table = self.loader(datetime.fromtimestamp(now, UTC), list(self.routes()))
        except DatabaseError as exc:
            log.warning("could not read the abuse verdicts and personalized limits (will retry): %s", exc)
            return
        self.sanctions.replace(table, now)
