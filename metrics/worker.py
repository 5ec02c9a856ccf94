"""A gateway worker's metrics machinery: the flusher (totals file, traffic history) and the live publisher.

rusta/server.py starts it in every worker once the event loop exists and stops it after the servers stopped;
the supervisor empties the shared folder before forking (`reset_shared_folder`).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from django.conf import settings

from metrics import procfiles
from metrics.flusher import WorkerFlusher
from metrics.history import store_for
from metrics.live import LivePublisher
from protocols.recorder import Recorder, recorder


def shared_folder() -> Path:
    """The folder this gateway's workers share, and no other gateway (settings.INSTANCE_DIR)."""
    return procfiles.folder_for(settings.INSTANCE_DIR)


def reset_shared_folder() -> None:
    procfiles.reset(shared_folder())


class WorkerMetrics:
    def __init__(self, source: Recorder = recorder) -> None:
        folder = shared_folder()
        store = store_for(settings.REDIS_URL) if settings.RUSTA_METRICS_HISTORY else None
        self.flusher = WorkerFlusher(source, folder, store, interval=1.0,
                                     history_every=settings.RUSTA_METRICS_FLUSH_INTERVAL)
        self.publisher = LivePublisher(folder, interval=1.0, redis_url=settings.REDIS_URL)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.flusher.start(loop)
        self.publisher.start(loop)

    async def stop(self) -> None:
        await self.publisher.stop()
        await asyncio.to_thread(self.flusher.stop)
