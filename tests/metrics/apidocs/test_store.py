"""metrics.apidocs.store and the worker's flusher: what a process learned lands in LearnedOperation rows, merged
with what other processes stored, and given back when the database fails."""
from __future__ import annotations

import json
import threading

import pytest
from django.db import DatabaseError, connection

from metrics.apidocs import store
from metrics.apidocs.openapi import document_for
from metrics.flusher import WorkerFlusher
from metrics.models import LearnedOperation
from protocols.apidocs.learn import Learner
from protocols.apidocs.sampler import RawSample, SampleBuffer
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db(transaction=True)


def raw(user: int, body: dict) -> RawSample:
    return RawSample("users", (None, "id"), "GET", f"/users/{user}", b"", "", None, False, 200, "application/json",
                     json.dumps(body).encode(), False)


def learned(*samples: RawSample) -> dict:
    learner = Learner()
    for one in samples:
        learner.add(one)
    return learner.take()


def test_two_processes_writes_merge_into_one_row():
    store.write_operations(learned(raw(1, {"id": 1, "a": "x"})))
    store.write_operations(learned(raw(2, {"id": 2}), raw(3, {"id": 3})))
    row = LearnedOperation.objects.get()
    assert (row.route, row.method, row.path, row.status, row.samples) == ("users", "GET", "/users/{id}", 200, 3)
    schema = document_for("users")["paths"]["/users/{id}"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]
    assert schema["required"] == ["id"] and schema["properties"]["id"]["maximum"] == 3


def test_writers_at_the_same_time_lose_no_sample():
    batches = [learned(raw(n, {"id": n})) for n in range(1, 9)]

    def write(batch: dict) -> None:
        try:
            store.write_operations(batch)
        finally:
            connection.close()  # each thread's own

    threads = [threading.Thread(target=write, args=(batch,)) for batch in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert LearnedOperation.objects.get().samples == 8


def test_a_route_keeps_at_most_its_row_cap(monkeypatch):
    monkeypatch.setattr(store, "MAX_ROWS_PER_ROUTE", 2)
    operations = {("users", "GET", f"/users/x{n}", 200): learned(raw(1, {}))[("users", "GET", "/users/{id}", 200)]
                  for n in range(4)}
    assert store.write_operations(operations) == 2
    assert LearnedOperation.objects.count() == 2


def test_the_flusher_learns_the_buffers_samples_and_writes_them_at_stop(tmp_path):
    buffer = SampleBuffer()
    flusher = WorkerFlusher(Recorder(), tmp_path, None, breakers=list, history_every=3600.0, api_docs=buffer,
                            docs_writer=store.write_operations)
    flusher._thread.start()  # what start() does, without scheduling ticks on a loop
    buffer.add(raw(1, {"id": 1}))
    flusher.tick()
    buffer.add(raw(2, {"id": 2}))
    flusher.stop()
    assert LearnedOperation.objects.get().samples == 2


def test_a_failed_write_is_given_back_and_written_next_time(tmp_path):
    written: list[dict] = []

    def flaky(operations: dict) -> None:
        if not written:
            written.append({})
            raise DatabaseError("database is locked")
        written.append(operations)

    buffer = SampleBuffer()
    flusher = WorkerFlusher(Recorder(), tmp_path, None, breakers=list, history_every=0.0, api_docs=buffer,
                            docs_writer=flaky)
    flusher._thread.start()
    buffer.add(raw(1, {"id": 1}))
    flusher.tick()
    buffer.add(raw(2, {"id": 2}))
    flusher.tick()
    flusher.stop()
    assert sum(operation["samples"] for batch in written for operation in batch.values()) == 2
