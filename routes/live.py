"""Keeps this process's live route table in step with the database, off the request path."""
from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from django.db import close_old_connections, connection
from django.db.utils import DatabaseError

from protocols.table import LiveTable, live
from routes.snapshot import build_table, current_version

log = logging.getLogger(__name__)


class TableWatcher:
    """Polls the configuration version and installs a freshly built table when it changes.

    One cheap query per interval per process; the request path only ever reads `live.table`. A failed build
    keeps the working table, and a database outage only makes /ready report it.
    """

    def __init__(self, state: LiveTable = live, interval: float = 0.5,
                 clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self.interval = interval
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check_once(self) -> bool:
        """One poll; returns True when a new table was installed."""
        close_old_connections()
        try:
            version = current_version()
            self.state.source_ok_at = self.clock()
            if self.state.loaded and version == self.state.table.version:
                return False
            table = build_table(version)
        except DatabaseError as exc:
            log.warning("configuration database unavailable, keeping table version %s: %s",
                        self.state.table.version, exc)
            connection.close()
            return False
        self.state.install(table)
        log.info("route table version %s installed (%s routes)", table.version, len(table))
        return True

    def start(self) -> None:
        self.check_once()
        self._thread = threading.Thread(target=self._run, name="rusta-table-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check_once()
