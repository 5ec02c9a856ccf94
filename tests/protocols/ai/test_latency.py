"""Latency prediction per request shape: a lower p99 than latency_aware's per-backend EWMA when latency depends on
the request, fallback from a rarely seen shape to the backend's estimate, and exploration of unmeasured backends.

No sockets: a function gives each simulated backend's latency from the body's size, with noise, and a fake clock
moves by that latency.
"""
from __future__ import annotations

from math import exp
from random import Random

import pytest

from protocols.ai.latency import LatencyPredictor, RequestFeatures
from protocols.balancing import Balancing
from protocols.table import BackendSpec, RouteSpec, RouteTable
from tests.support.load import percentile


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def upload(body_bytes: int) -> RequestFeatures:
    return RequestFeatures("POST", "/files/{name}", body_bytes)


def latency(backend: str, body_bytes: int, rng: Random) -> float:
    """Backend "a" takes 1 ms for 64 bytes and grows with the size (0.3 s at 1 MiB); "b" is the reverse."""
    size = max(body_bytes, 64)
    base = 0.001 * (size / 64) ** 0.6 if backend == "a" else 0.001 * (2**20 / size) ** 0.6
    return base * exp(rng.gauss(0.0, 0.2))


def workload(seed: int, count: int) -> list[int]:
    """Body sizes spread evenly over log2 from 64 bytes to 1 MiB."""
    rng = Random(seed)
    return [int(2 ** rng.uniform(6, 20)) for _ in range(count)]


def latency_aware_run(sizes: list[int], rng: Random) -> list[float]:
    """The same stream through the `latency_aware` strategy, each request finishing before the next starts."""
    clock = FakeClock()
    specs = (BackendSpec(id=1, scheme="http", host="a", port=80), BackendSpec(id=2, scheme="http", host="b", port=80))
    routes = RouteTable([RouteSpec(id=1, name="files", external_path="/files", methods=("POST",), backends=specs,
                                   load_balancing_strategy="latency_aware")])
    runtime = Balancing(clock).runtimes(routes)[1]
    seconds = []
    for size in sizes:
        lease = runtime.pick("1.2.3.4")
        took = latency(lease[0].spec.host, size, rng)
        clock.now += took
        runtime.release(lease, False, clock.now)
        clock.now += 0.01
        seconds.append(took)
    return seconds


def predicted_run(sizes: list[int], rng: Random) -> list[float]:
    clock = FakeClock()
    predictor: LatencyPredictor[str] = LatencyPredictor(clock)
    seconds = []
    for size in sizes:
        features = upload(size)
        backend = predictor.choose(["a", "b"], features, rng)
        took = latency(backend, size, rng)
        clock.now += took
        predictor.observe(backend, features, took)
        clock.now += 0.01
        seconds.append(took)
    return seconds


def test_its_p99_is_at_most_half_of_latency_awares_when_latency_depends_on_the_body():
    sizes = workload(seed=1, count=5000)
    baseline = percentile(latency_aware_run(sizes, Random(2)), 0.99)
    predicted = percentile(predicted_run(sizes, Random(2)), 0.99)
    assert predicted <= 0.5 * baseline, f"p99 {predicted * 1000:.1f} ms vs latency_aware's {baseline * 1000:.1f} ms"


def test_it_predicts_each_body_size_bucket_apart_and_a_well_known_bucket_decides_its_prediction():
    predictor: LatencyPredictor[str] = LatencyPredictor(FakeClock())
    for _ in range(100):
        predictor.observe("a", upload(100), 0.002)
        predictor.observe("a", upload(500_000), 0.300)
    assert predictor.predict("a", upload(110)) == pytest.approx(0.002, rel=0.1)
    assert predictor.predict("a", upload(510_000)) == pytest.approx(0.300, rel=0.1)


def test_a_rarely_seen_shape_is_predicted_from_the_template_then_the_backend_moved_by_its_own_samples():
    predictor: LatencyPredictor[str] = LatencyPredictor(FakeClock())
    for _ in range(5):
        predictor.observe("a", upload(100), 0.010)
        predictor.observe("a", RequestFeatures("GET", "/health", 0), 0.050)
    backend = predictor.predict("a", RequestFeatures("PUT", "/other", 0))
    assert backend == predictor.predict("a", RequestFeatures("DELETE", "/else", 9)), "both from a's estimate"
    assert backend is not None and 0.010 < backend < 0.050
    never_seen = predictor.predict("a", upload(3_000))
    predictor.observe("a", upload(400_000), 1.0)  # one sample of its own
    seen_once = predictor.predict("a", upload(400_000))
    assert never_seen is not None and seen_once is not None
    assert 0.010 < never_seen < seen_once < 0.5, "a tenth of the way from the template's estimate to its sample"


def test_a_backend_slow_for_one_shape_stays_predicted_slow_for_it_while_its_few_samples_age():
    clock = FakeClock()
    predictor: LatencyPredictor[str] = LatencyPredictor(clock)
    for _ in range(100):
        predictor.observe("a", upload(100), 0.005)  # a: fast for small bodies, the bulk of its traffic
        predictor.observe("b", upload(100), 0.200)
        predictor.observe("b", upload(8_000), 0.005)  # b: fast for large ones
    for _ in range(3):
        predictor.observe("a", upload(8_000), 0.200)  # a was tried on large bodies a few times
    clock.now += 30  # half a horizon later: those samples count less than min_samples
    rng = Random(3)
    assert [predictor.choose(["a", "b"], upload(8_000), rng) for _ in range(100)] == ["b"] * 100

def test_it_explores_a_backend_it_has_never_seen_one_request_at_a_time():
    clock = FakeClock()
    predictor: LatencyPredictor[str] = LatencyPredictor(clock)
    rng = Random(3)
    for _ in range(10):
        predictor.observe("a", upload(100), 0.010)
        predictor.observe("b", upload(100), 0.020)
    backends = ["a", "b", "c"]
    chosen = [predictor.choose(backends, upload(100), rng) for _ in range(30)]
    assert chosen.count("c") == 1, "one request explores c; the others wait for its answer"
    predictor.observe("c", upload(100), 0.001)
    assert predictor.predict("c", upload(100)) == pytest.approx(0.001)
    chosen = [predictor.choose(backends, upload(100), rng) for _ in range(30)]
    assert "b" not in chosen and "c" in chosen


def test_a_backend_not_heard_from_for_long_is_explored_again():
    clock = FakeClock()
    predictor: LatencyPredictor[str] = LatencyPredictor(clock, horizon_s=60.0)
    for _ in range(10):
        predictor.observe("b", upload(100), 0.500)
    clock.now += 60.0
    assert predictor.predict("b", upload(100)) == pytest.approx(0.500), "one horizon on, the estimate still holds"
    clock.now += 600.0
    assert predictor.predict("b", upload(100)) is None
    predictor.observe("a", upload(100), 0.010)
    assert predictor.choose(["a", "b"], upload(100), Random(4)) == "b"


def test_a_trial_that_never_reports_frees_its_backend_after_the_trial_timeout():
    clock = FakeClock()
    predictor: LatencyPredictor[str] = LatencyPredictor(clock, trial_timeout_s=30.0)
    predictor.observe("a", upload(100), 0.010)
    assert predictor.choose(["a", "b"], upload(100), Random(1)) == "b"  # the trial of b, never reported
    assert predictor.choose(["a", "b"], upload(100), Random(1)) == "a", "b's one trial is still on its way"
    clock.now += 30.0
    assert predictor.choose(["a", "b"], upload(100), Random(1)) == "b", "the lost trial no longer holds b"


def test_body_sizes_fall_in_log2_buckets():
    assert [upload(size).size_bucket for size in (0, 1, 2, 3, 4, 1023, 1024)] == [0, 1, 2, 2, 3, 10, 11]


def test_a_backend_never_measured_for_a_shape_is_tried_on_it_once_and_then_chosen_if_faster():
    clock = FakeClock()
    predictor: LatencyPredictor[str] = LatencyPredictor(clock)
    for _ in range(20):  # b happened to get only small bodies, on which it is slow
        predictor.observe("a", upload(100), 0.005)
        predictor.observe("b", upload(100), 0.200)
        predictor.observe("a", upload(8_000), 0.200)
    rng = Random(4)
    first = predictor.choose(["a", "b"], upload(8_000), rng)
    assert first == "b", "b's trial on large bodies"
    assert predictor.choose(["a", "b"], upload(8_000), rng) == "a", "one trial at a time"
    predictor.observe("b", upload(8_000), 0.005)
    assert [predictor.choose(["a", "b"], upload(8_000), rng) for _ in range(20)] == ["b"] * 20
