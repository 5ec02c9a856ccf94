"""A gateway worker's metrics machinery: the flusher (totals file, traffic history) and the live publisher.

rusta/server.py starts it in every worker once the event loop exists and stops it after the servers stopped;
the supervisor empties the shared folder before forking (`reset_shared_folder`).
"""
from __future__ import annotations

import asyncio
from pathlib import Path

from django.conf import settings

from metrics import llm_spend, procfiles
from metrics.abuse.flush import AbuseFlush
from metrics.apidocs.store import write_operations
from metrics.flusher import WorkerFlusher
from metrics.history import store_for
from metrics.live import LivePublisher
from protocols.apidocs.sampler import samples
from protocols.llm.budgets import Budgets, LocalBudgetStore
from protocols.recorder import Recorder, recorder


def shared_folder() -> Path:
    """The folder this gateway's workers share, and no other gateway (settings.INSTANCE_DIR)."""
    return procfiles.folder_for(settings.INSTANCE_DIR)


def reset_shared_folder() -> None:
    procfiles.reset(shared_folder())


class WorkerMetrics:
    """`budgets`: the data plane's LLM token limits and budgets, seeded from the database before serving
    (`seed_budgets`) and, when this process counts them on its own (no Redis), written by the flusher.
    `abuse`: the data plane's abuse counters and sanctions, flushed and refreshed by the flusher's thread."""

    def __init__(self, source: Recorder = recorder, budgets: Budgets | None = None,
                 abuse: AbuseFlush | None = None) -> None:
        folder = shared_folder()
        store = store_for(settings.REDIS_URL) if settings.RUSTA_METRICS_HISTORY else None
        self.budgets = budgets
        # Shared in Redis, the counters are written once for all processes by the persist_llm_spend task.
        own = budgets.export if budgets is not None and isinstance(budgets.store, LocalBudgetStore) else None
        self.flusher = WorkerFlusher(source, folder, store, interval=1.0,
                                     history_every=settings.RUSTA_METRICS_FLUSH_INTERVAL,
                                     spend=own, spend_every=llm_spend.SPEND_EVERY_S, abuse=abuse,
                                     api_docs=samples, docs_writer=write_operations)
        self.publisher = LivePublisher(folder, interval=1.0, redis_url=settings.REDIS_URL)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.flusher.start(loop)
        self.publisher.start(loop)

    async def seed_budgets(self) -> int:
        """Raise the LLM counters to the spend the database kept (before the process serves)."""
        return 0 if self.budgets is None else await llm_spend.seed_budgets(self.budgets)

    async def stop(self) -> None:
        await self.publisher.stop()
        await asyncio.to_thread(self.flusher.stop)
