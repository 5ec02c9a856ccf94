"""Keeps this process's live route table in step with the database, off the request path."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connection
from django.db.utils import DatabaseError

from protocols.table import LiveTable, live
from routes.cache_purges import PurgeFollower
from routes.snapshot import build_table, current_versions, health_map

log = logging.getLogger(__name__)


class TableWatcher:
    """Polls the configuration and health versions; installs a freshly built table, or a freshly loaded health
    overlay, when its version changes.

    One cheap query per interval per process (plus one per change); the request path only ever reads
    `live.table` and `live.health`. A failed build keeps the working table, and a database outage only makes
    /ready report it. The same poll reads the background work's heartbeat, which /health and /ready report.
    With `purges` (the worker's response cache's follower) it also applies cache purges requested from the
    admin or the API.
    """

    def __init__(self, state: LiveTable = live, interval: float = 0.5,
                 clock: Callable[[], float] = time.time, purges: PurgeFollower | None = None) -> None:
        self.state = state
        self.interval = interval
        self.clock = clock
        self.purges = purges
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> bool:
        """One poll; returns True when a new table was installed."""
        close_old_connections()
        installed = False
        try:
            version, health_version, purge_id, background_at = current_versions()
            self.state.source_ok_at = self.clock()
            self.state.background_at = background_at
            if not self.state.loaded or version != self.state.table.version:
                table = build_table(version)
                self.state.install(table)
                installed = True
                log.info("route table version %s installed (%s routes)", table.version, len(table))
            if health_version != self.state.health_version:
                health = health_map()
                self.state.install_health(health, health_version)
                log.info("health version %s installed (%s backends down)", health_version,
                         sum(1 for healthy in health.values() if not healthy))
            if self.purges is not None:
                self.purges.follow(purge_id)
        except DatabaseError as exc:
            log.warning("configuration database unavailable, keeping table version %s and health version %s: %s",
                        self.state.table.version, self.state.health_version, exc)
            connection.close()
        return installed

    def start(self) -> None:
        # From here the background work has RUSTA_BACKGROUND_STALE_AFTER seconds to report (protocols.health).
        self.state.watching_since = self.clock()
        self.check_once()
        self._thread = threading.Thread(target=self._run, name="rusta-table-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_once()
