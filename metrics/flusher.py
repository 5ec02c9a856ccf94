"""Drains a worker's recorder off the request path: totals for /metrics every second, history every few seconds.

On the worker's event loop, once a second (aligned to wall-clock seconds, so a window never straddles two
10-second buckets), `tick` closes the recorder's window and takes AI routing's, backend discovery's, the
plugins' and the LLM routes' snapshots (protocols.ai.records, protocols.discovery.figures, protocols.plugins,
protocols.llm.metrics: read on the loop because the loop writes them) and the LLM routes' spend window (kept in
the history beside the recorder's window, metrics.llm_points), which costs
microseconds to a millisecond. Everything that does I/O happens on the flusher's own thread: writing this
process's totals file (metrics.procfiles) and writing the history buffer to its store (metrics.history) every
`history_every` seconds. A store that fails (database locked, Redis away) is logged and written again on the
next round; the request path never waits for it.

With routes that count clients (an `abuse` block), the tick also hands over the abuse counters' window once it
ended, and the thread writes it and reads back the sanctions in force (metrics.abuse.flush).

Routes with an `api_docs` block leave samples in the process's buffer (protocols.apidocs.sampler): the tick takes
them on the loop, and the flusher's thread learns their shapes (protocols.apidocs.learn) and writes them to the
database every `history_every` seconds (metrics.apidocs.store), giving back what it could not write.

On the embedded default the flusher also keeps the LLM token limits and budgets (metrics.llm_spend): every
`spend_every` seconds and at stop its thread has the counters' snapshot taken on the loop (`spend`, which the
loop's requests change), then writes it to the database itself.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from django.db import close_old_connections
from django.db.utils import DatabaseError
from redis.exceptions import RedisError

from metrics import llm_spend, procfiles
from metrics.abuse.flush import AbuseFlush
from metrics.history import HistoryBuffer, Store
from protocols.abuse.counters import ClosedWindow
from protocols.ai import records
from protocols.apidocs.learn import Learner, Operation, OperationKey
from protocols.apidocs.sampler import RawSample, SampleBuffer
from protocols.discovery import figures as discovery_figures
from protocols.llm import metrics as llm_metrics
from protocols.llm.budgets import SpendEntry
from protocols.llm.metrics import SpendKey
from protocols.plugins import snapshot as plugin_snapshot
from protocols.recorder import ConsumerKey, Recorder, Totals, WindowKey

log = logging.getLogger(__name__)
# How long the flusher's thread waits for the loop to take the LLM counters' snapshot (microseconds of work).
SPEND_SNAPSHOT_TIMEOUT_S = 2.0
# Takes the LLM counters' snapshot on the loop (Budgets.export).
SpendSnapshot = Callable[[], Coroutine[Any, Any, Sequence[SpendEntry]]]
# What one tick hands the flusher's thread: totals, breaker rows, the AI snapshot, the closed window, its start,
# and the consumer window closed with it; last, backend discovery's snapshot, the plugins' and the LLM routes'
# counters, then the LLM spend window and the abuse counters' window (when one ended).
_Tick = tuple[Totals, list[dict[str, Any]], dict[str, Any], dict[WindowKey, list[Any]], float,
              dict[ConsumerKey, list[Any]], dict[str, Any], dict[str, Any], dict[str, Any],
              dict[SpendKey, list[int]], ClosedWindow | None]


def breaker_rows() -> list[dict[str, Any]]:
    """This process's breakers as plain rows (protocols.breakers' snapshot)."""
    from protocols import breakers

    rows = [asdict(row) for row in breakers.snapshot()]
    for row in rows:
        # "http://10.0.0.5:8080" -> "10.0.0.5:8080": the label the proxy reports requests and errors under.
        row["backend"] = row["backend"].split("://", 1)[-1]
    return rows


class WorkerFlusher:
    """See the module docstring. `start(loop)` once the loop exists; `stop()` when the worker ends."""

    def __init__(self, recorder: Recorder, folder: Path, store: Store | None, *, interval: float = 1.0,
                 history_every: float = 2.0, clock: Callable[[], float] = time.time,
                 breakers: Callable[[], list[dict[str, Any]]] = breaker_rows,
                 ai: Callable[[], dict[str, Any]] = records.snapshot,
                 discovery: Callable[[], dict[str, Any]] = discovery_figures.snapshot,
                 plugins: Callable[[], dict[str, Any]] = plugin_snapshot,
                 llm: Callable[[], dict[str, Any]] = llm_metrics.snapshot,
                 llm_window: Callable[[], dict[SpendKey, list[int]]] = llm_metrics.take_window,
                 on_tick: Callable[[], None] | None = None,
                 spend: SpendSnapshot | None = None, spend_every: float = 10.0,
                 spend_writer: Callable[[Sequence[SpendEntry], float], object] = llm_spend.write_snapshot,
                 abuse: AbuseFlush | None = None, api_docs: SampleBuffer | None = None,
                 docs_writer: Callable[[dict[OperationKey, Operation]], object] | None = None) -> None:
        self.recorder = recorder
        self.folder = folder
        self.store = store
        self.interval = interval
        self.history_every = history_every
        self.clock = clock
        self.breakers = breakers
        self.ai = ai
        self.discovery = discovery
        self.plugins = plugins
        self.llm = llm
        self.llm_window = llm_window
        self.on_tick = on_tick
        self.spend = spend
        self.spend_every = spend_every
        self.spend_writer = spend_writer
        self.abuse = abuse
        self._last_spend = 0.0
        self.api_docs = api_docs
        self.docs_writer = docs_writer
        self.learner = Learner()
        self._samples: queue.Queue[list[RawSample]] = queue.Queue()
        self._last_docs = 0.0
        self.history = HistoryBuffer()
        self._queue: queue.Queue[_Tick | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="rusta-metrics-flusher", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._window_started = clock()
        self._last_history = 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._window_started = self.clock()
        self._thread.start()
        self._schedule()

    def _schedule(self) -> None:
        assert self._loop is not None
        now = self.clock()
        delay = self.interval - (now % self.interval) + 0.001
        self._timer = self._loop.call_later(delay, self.tick)

    def tick(self, *, final: bool = False) -> None:
        """Close the window and hand it, with a copy of the totals, to the flusher's thread (on the loop); the
        `final` tick (at stop) hands over the abuse counters' window before its end."""
        now = self.clock()
        started, self._window_started = self._window_started, now
        window = self.recorder.take_window()
        consumers = self.recorder.take_consumer_window()
        breakers = self.breakers()
        self.recorder.breakers_seen(breakers)
        abuse = self.abuse.take(final=final) if self.abuse is not None else None
        if self.api_docs is not None and self.api_docs.samples:
            self._samples.put(self.api_docs.take())  # before the tick's item: its round learns them
        self._queue.put((self.recorder.snapshot(), breakers, self.ai(), window, started, consumers,
                         self.discovery(), self.plugins(), self.llm(), self.llm_window(), abuse))
        if self.on_tick is not None:
            self.on_tick()
        if self._loop is not None and self._timer is not None:
            self._schedule()

    def stop(self, timeout: float = 5.0) -> None:
        """Last tick, last writes, and this process's file folded into the dead workers' counters."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.tick(final=True)
        self._queue.put(None)
        if self._thread.is_alive():
            self._thread.join(timeout)
        try:
            procfiles.remove(self.folder)
        except OSError as exc:
            log.warning("could not remove this worker's metrics file: %s", exc)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                self._write_history(force=True)
                self._write_spend(force=True)
                self._write_docs(force=True)
                return
            totals, breakers, ai, window, started, consumers, discovery, plugins, llm, spend, abuse = item
            try:
                procfiles.write(self.folder, totals, breakers, self.clock(), ai=ai, discovery=discovery,
                                plugins=plugins, llm=llm, cpu_s=time.process_time())
            except OSError as exc:
                log.warning("could not write this worker's metrics file: %s", exc)
            if window or spend:
                self.history.add(window, started, consumers, spend)
            self._write_history(force=False)
            self._write_spend(force=False)
            if self.abuse is not None:
                close_old_connections()
                try:
                    self.abuse.work(abuse, self.history.source)
                finally:
                    close_old_connections()
            self._write_docs(force=False)

    def _write_history(self, *, force: bool) -> None:
        now = self.clock()
        if self.store is None or (not force and now - self._last_history < self.history_every):
            return
        self._last_history = now
        close_old_connections()
        try:
            self.history.flush(self.store, now)
        except (DatabaseError, RedisError, OSError) as exc:
            log.warning("could not write the traffic history (will retry): %s", exc)
        finally:
            close_old_connections()

    def _write_spend(self, *, force: bool) -> None:
        """The LLM counters' snapshot, taken on the loop, written here (see the module docstring)."""
        now = self.clock()
        loop = self._loop
        if (self.spend is None or loop is None or not loop.is_running()
                or (not force and now - self._last_spend < self.spend_every)):
            return
        self._last_spend = now
        future = asyncio.run_coroutine_threadsafe(self.spend(), loop)
        try:
            entries = future.result(SPEND_SNAPSHOT_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            future.cancel()
            log.warning("the event loop did not hand over the LLM spend counters in %.0f s (will retry)",
                        SPEND_SNAPSHOT_TIMEOUT_S)
            return
        if not entries:
            return
        close_old_connections()
        try:
            self.spend_writer(entries, now)
        except DatabaseError as exc:
            log.warning("could not write the LLM spend counters (will retry): %s", exc)
        finally:
            close_old_connections()

    def _write_docs(self, *, force: bool) -> None:
        """The api_docs samples taken so far, learned here and written every `history_every` seconds."""
        while not self._samples.empty():
            for sample in self._samples.get_nowait():
                self.learner.add(sample)
        now = self.clock()
        if self.docs_writer is None or (not force and now - self._last_docs < self.history_every):
            return
        self._last_docs = now
        operations = self.learner.take()
        if not operations:
            return
        close_old_connections()
        try:
            self.docs_writer(operations)
        except DatabaseError as exc:
            self.learner.give_back(operations)
            log.warning("could not write the learned API docs (will retry): %s", exc)
        finally:
            close_old_connections()
