"""Helpers of the admin overview and backend health tests: traffic and breaker reports written the way gateway
workers write them (the recorder's history into the database, the flusher's figures file)."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from metrics import procfiles
from metrics.history import DatabaseStore, HistoryBuffer
from protocols.recorder import Recorder, Totals


@pytest.fixture
def gateway_files(settings, tmp_path) -> Path:
    """The folder where the gateway's workers write their figures (breakers included), for this test alone."""
    settings.VAR_DIR = settings.INSTANCE_DIR = tmp_path  # whichever of the two the figures are read under
    return procfiles.folder_for(tmp_path)


def report_breakers(folder: Path, rows: list[tuple[str, str, str]], totals: Totals | None = None) -> None:
    """Write a worker's figures file as the flusher does: (route, backend, state) per breaker."""
    breakers = [{"route": route, "backend": backend, "state": state, "consecutive_failures": 5, "opened_at": None}
                for route, backend, state in rows]
    procfiles.write(folder, totals or Totals(), breakers, time.time(), pid=os.getpid())


def serve(route: str, backend: str, count: int, *, errors: int = 0, seconds: float = 0.02,
          at: float | None = None) -> None:
    """Requests recorded and written to the history as a gateway worker does (recorder -> buffer -> store)."""
    recorder = Recorder()
    for index in range(count):
        status = 502 if index < errors else 200
        recorder.record_request(route, "GET", status, seconds, seconds, 10, 100, backend, None)
    buffer = HistoryBuffer(source="test-worker")
    at = time.time() if at is None else at
    buffer.add(recorder.take_window(), at)
    buffer.flush(DatabaseStore(), at)
