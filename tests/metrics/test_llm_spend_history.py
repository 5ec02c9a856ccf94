"""LLM spend points: each flush's window of real LlmMetrics becomes one 10-second point per route, model and
consumer (database or Redis), written again replaced not added, rolled up with the route series exactly, and
pruned by the same retention."""
from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest

from metrics import history, rollups
from metrics.flusher import WorkerFlusher
from metrics.models import LlmSpendRawPoint, LlmSpendRollupPoint
from protocols.llm.exchange import Outcome
from protocols.llm.formats.chat import Usage
from protocols.llm.metrics import LlmMetrics, snapshot
from protocols.recorder import Recorder

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
FIELDS = ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cost_micros")


def answered(model: str = "gpt-4o", micros: int = 2150) -> Outcome:
    return Outcome(status=200, target="main", model=model, complete=True, cost_micros=micros,
                   usage=Usage(input_tokens=1200, output_tokens=40, cached_input_tokens=1000))


def spent(requests: int, consumer: str = "alice", **outcome) -> tuple[dict, dict]:
    """A recorder window (the route's own requests) and the LLM spend window after `requests` answers."""
    metrics, recorder = LlmMetrics(), Recorder()
    for _ in range(requests):
        metrics.record("chat", consumer, answered(**outcome), 0.5, streamed=False)
        recorder.record_request("chat", "POST", 200, 0.5, 0.4, 10, 10, "llm:main", None, consumer)
    return recorder.take_window(), metrics.take_window()


def flush(source: str, requests: int, at: float, store=None, **options) -> history.HistoryBuffer:
    buffer = history.HistoryBuffer(source)
    window, spend = spent(requests, **options)
    buffer.add(window, at, None, spend)
    buffer.flush(store or history.DatabaseStore(), at + 1)
    return buffer


def totals(model=LlmSpendRawPoint, **filters) -> tuple[int, ...]:
    rows = list(model.objects.filter(**filters).values_list(*FIELDS))
    return tuple(sum(column) for column in zip(*rows, strict=True)) if rows else (0,) * len(FIELDS)


def test_a_window_holds_what_was_spent_since_the_last_one_and_the_counters_keep_everything():
    metrics = LlmMetrics()
    metrics.record("chat", "alice", answered(), 0.5, streamed=False)
    metrics.record("chat", "alice", Outcome(status=429, error="budget_exceeded"), 0.001, streamed=False)
    assert metrics.take_window() == {("chat", "gpt-4o", "alice"): [1, 1200, 40, 1000, 2150],
                                     ("chat", "", "alice"): [1, 0, 0, 0, 0]}
    metrics.record("chat", "alice", answered(), 0.5, streamed=False)
    assert metrics.take_window() == {("chat", "gpt-4o", "alice"): [1, 1200, 40, 1000, 2150]}
    assert metrics.take_window() == {}
    assert snapshot(metrics)["cost"] == [["chat", "gpt-4o", "alice", 4300]]


def test_windows_of_one_bucket_become_one_point_per_route_model_and_consumer():
    buffer = history.HistoryBuffer("p1")
    for second, consumer in ((1, "alice"), (4, "alice"), (6, "bob")):
        window, spend = spent(2, consumer)
        buffer.add(window, T0.timestamp() + second, None, spend)
    buffer.flush(history.DatabaseStore(), T0.timestamp() + 10)
    alice = LlmSpendRawPoint.objects.get(consumer="alice")
    assert (alice.start, alice.route, alice.model) == (T0, "chat", "gpt-4o")
    assert totals(consumer="alice") == (4, 4800, 160, 4000, 8600)
    assert totals(consumer="bob") == (2, 2400, 80, 2000, 4300)


def test_a_spend_point_written_again_is_replaced_not_added():
    buffer = flush("p1", 3, T0.timestamp())
    history.DatabaseStore().write_llm_spend("p1", dict(buffer.spend.points))  # a retried write
    assert totals() == (3, 3600, 120, 3000, 6450)
    assert LlmSpendRawPoint.objects.count() == 1


def test_a_store_that_fails_on_spend_writes_it_on_the_next_flush():
    class Flaky(history.DatabaseStore):
        failed = False

        def write_llm_spend(self, source, points):
            if not Flaky.failed:
                Flaky.failed = True
                raise OSError("store away")
            super().write_llm_spend(source, points)

    buffer = history.HistoryBuffer("p1")
    window, spend = spent(2)
    buffer.add(window, T0.timestamp(), None, spend)
    with pytest.raises(OSError):
        buffer.flush(Flaky(), T0.timestamp() + 1)
    buffer.flush(Flaky(), T0.timestamp() + 2)
    assert totals() == (2, 2400, 80, 2000, 4300)


def test_spend_is_rolled_up_with_the_route_series_exactly_and_only_once():
    for second in range(0, 120, 10):
        for source, consumer in (("p1", "alice"), ("p2", "bob")):
            flush(source, 2, T0.timestamp() + second, consumer=consumer, micros=1_234_567)
    now = T0 + timedelta(minutes=10)
    rollups.run_all(now)
    rollups.run_all(now)
    minutes = LlmSpendRollupPoint.objects.filter(resolution="1m", consumer="alice").order_by("start")
    assert [(p.route, p.model, p.requests, p.cost_micros) for p in minutes] == [("chat", "gpt-4o", 12,
                                                                                 12 * 1_234_567)] * 2
    assert totals(LlmSpendRollupPoint, resolution="1m") == totals()
    assert totals(LlmSpendRollupPoint, resolution="5m") == totals() == (48, 48 * 1200, 48 * 40, 48 * 1000,
                                                                       48 * 1_234_567)


def test_retention_deletes_old_spend_points_once_rolled_up():
    old = T0 - timedelta(days=3)
    flush("p1", 2, old.timestamp())
    flush("p1", 1, T0.timestamp())
    rollups.run_all(T0 + timedelta(minutes=10))
    rollups.apply_retention(T0 + timedelta(minutes=10))
    assert list(LlmSpendRawPoint.objects.values_list("start", flat=True)) == [T0]  # raw points: 1 day
    assert totals(LlmSpendRollupPoint, resolution="1m")[0] == 3  # 1-minute points: 7 days


@pytest.mark.django_db(transaction=True)
def test_the_flusher_takes_the_llm_window_each_tick_into_the_history(tmp_path):
    metrics, recorder = LlmMetrics(), Recorder()
    now = [T0.timestamp()]
    flusher = WorkerFlusher(recorder, tmp_path, history.DatabaseStore(), history_every=0.0, clock=lambda: now[0],
                            breakers=list, llm=lambda: snapshot(metrics), llm_window=metrics.take_window)
    flusher._thread.start()  # what start() does, without scheduling ticks on a loop
    metrics.record("chat", "alice", answered(), 0.5, streamed=False)
    now[0] += 10
    flusher.tick()  # the window of [T0, T0 + 10 s); the next one starts in the next bucket
    now[0] += 1
    metrics.record("chat", "alice", answered(), 0.5, streamed=False)
    metrics.record("chat", "bob", answered(model="gpt-4o-mini", micros=300), 0.5, streamed=False)
    flusher.stop()
    assert totals(start=T0) == (1, 1200, 40, 1000, 2150)
    assert totals(start=T0 + timedelta(seconds=10)) == (2, 2400, 80, 2000, 2450)
    assert totals() == (3, 3600, 120, 3000, 4600)  # what /metrics counts (snapshot), no more, no less
    assert sum(row[-1] for row in snapshot(metrics)["cost"]) == 4600


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (the scaled-out suite)")
def test_spend_points_kept_in_redis_are_ingested_once_with_their_bucket():
    client = history.redis_client(os.environ["REDIS_URL"])
    store = history.RedisStore(client)
    bucket = int(T0.timestamp())
    for source, requests in (("p1", 2), ("p2", 3)):
        flush(source, requests, T0.timestamp(), store)
    flush("p1", 2, T0.timestamp(), store)  # p1 writes its bucket again: replaced in the hash, not added
    later = T0 + timedelta(minutes=1)
    assert history.ingest_from_redis(client, later) == 1
    client.zadd(history.REDIS_PENDING, {str(bucket): bucket})  # a crash before the bucket left the pending set
    assert history.ingest_from_redis(client, later) == 1
    assert totals(source="redis") == (5, 6000, 200, 5000, 5 * 2150)
    assert LlmSpendRawPoint.objects.count() == 1
    client.close()
