"""The circuit-breaker state machine on a hand-driven clock, and the snapshot the metrics exporter reads."""
from __future__ import annotations

import logging
import time

from protocols import breakers
from protocols.balancing import Balancing
from protocols.breakers import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from protocols.resilience import BREAKER_RULES as CIRCUIT_BREAKER_RULES
from protocols.resilience import DEFAULT_BREAKER, BreakerPolicy, breaker_policy
from protocols.table import BackendSpec, RouteSpec, RouteTable


def fail(breaker: CircuitBreaker, now: float, times: int = 1) -> None:
    for _ in range(times):
        breaker.record(True, breaker.acquire(), now)


def succeed(breaker: CircuitBreaker, now: float, times: int = 1) -> None:
    for _ in range(times):
        breaker.record(False, breaker.acquire(), now)


def opened(policy: BreakerPolicy = DEFAULT_BREAKER, now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(policy, now=now)
    fail(breaker, now, policy.failure_threshold)
    return breaker


def test_it_opens_after_the_consecutive_failure_threshold():
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3))
    fail(breaker, 0.0, 2)
    assert breaker.state is CLOSED
    fail(breaker, 0.0)
    assert breaker.state is OPEN
    assert not breaker.available(0.0)


def test_a_success_resets_the_consecutive_count():
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=3))
    fail(breaker, 0.0, 2)
    succeed(breaker, 0.0)
    fail(breaker, 0.0, 2)
    assert breaker.state is CLOSED


def test_it_opens_on_the_failure_ratio_over_the_window():
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=100, failure_ratio=0.5, window=10, min_requests=20))
    for i in range(20):
        (fail if i % 3 == 0 else succeed)(breaker, i * 0.1)  # 7 failures in 20: 35%
    assert breaker.state is CLOSED
    for i in range(10):
        (succeed if i % 4 == 0 else fail)(breaker, 2 + i * 0.1)  # now 14 failures in 30: still under half
    assert breaker.state is CLOSED
    fail(breaker, 3.0, 2)
    assert breaker.state is CLOSED  # 16 of 32: not above half
    fail(breaker, 3.0)
    assert breaker.state is OPEN  # 17 of 33


def test_the_failure_ratio_waits_for_the_minimum_number_of_requests():
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=100, failure_ratio=0.1, min_requests=20))
    fail(breaker, 0.0, 19)
    assert breaker.state is CLOSED
    fail(breaker, 0.0)
    assert breaker.state is OPEN


def test_the_failure_ratio_forgets_failures_older_than_the_window():
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=100, failure_ratio=0.5, window=10, min_requests=20))
    fail(breaker, 0.0, 15)
    succeed(breaker, 0.0)
    succeed(breaker, 11.0, 20)
    fail(breaker, 11.0, 4)
    assert breaker.state is CLOSED


def test_it_fails_fast_while_open_and_half_opens_after_open_s():
    breaker = opened(BreakerPolicy(open_s=10), now=100.0)
    assert not breaker.available(109.9)
    assert breaker.retry_in(109.0) == 1.0
    assert breaker.available(110.0)
    assert breaker.state is HALF_OPEN


def test_half_open_lets_one_trial_through_at_a_time():
    breaker = opened(BreakerPolicy(open_s=1, half_open_requests=1))
    assert breaker.available(1.0)
    trial = breaker.acquire()
    assert not breaker.available(1.0)
    breaker.record(False, trial, 1.1)
    assert breaker.available(1.1)


def test_it_closes_after_the_success_threshold_of_trials():
    breaker = opened(BreakerPolicy(open_s=1, success_threshold=2))
    breaker.available(1.0)
    succeed(breaker, 1.0)
    assert breaker.state is HALF_OPEN
    succeed(breaker, 1.0)
    assert breaker.state is CLOSED
    assert breaker.failures == 0


def test_a_failed_trial_opens_it_again_for_another_open_s():
    breaker = opened(BreakerPolicy(open_s=1))
    breaker.available(1.0)
    fail(breaker, 1.5)
    assert breaker.state is OPEN
    assert not breaker.available(2.4)
    assert breaker.available(2.5)


def test_a_client_that_leaves_frees_the_trial_without_a_verdict():
    breaker = opened(BreakerPolicy(open_s=1))
    breaker.available(1.0)
    breaker.record(None, breaker.acquire(), 1.0)
    assert breaker.state is HALF_OPEN
    assert breaker.available(1.0)


def test_late_answers_to_requests_sent_before_it_opened_change_nothing():
    breaker = CircuitBreaker(BreakerPolicy(failure_threshold=1, open_s=1))
    early = breaker.acquire()
    fail(breaker, 0.0)
    breaker.available(1.0)  # half-open now
    breaker.record(False, early, 1.0)
    breaker.record(False, early, 1.0)
    assert breaker.state is HALF_OPEN


def test_a_disabled_breaker_never_opens():
    breaker = CircuitBreaker(BreakerPolicy(enabled=False, failure_threshold=1))
    fail(breaker, 0.0, 50)
    assert breaker.state is CLOSED
    assert breaker.available(0.0)


def test_a_new_policy_keeps_the_state():
    breaker = opened(BreakerPolicy(open_s=10))
    breaker.configure(BreakerPolicy(open_s=2), 0.0)
    assert breaker.state is OPEN
    assert breaker.available(2.0)


def test_the_block_defaults_and_overrides():
    assert breaker_policy("r", None) == BreakerPolicy()
    policy = breaker_policy("r", {"circuit_breaker": {"failure_threshold": 2, "failure_statuses": [500],
                                                       "failure_ratio": 0.3}})
    assert (policy.failure_threshold, policy.failure_statuses, policy.failure_ratio) == (2, frozenset({500}), 0.3)
    assert policy.open_s == 10


def test_unusable_values_fall_back_to_their_defaults():
    policy = breaker_policy("r", {"circuit_breaker": {"failure_threshold": "many", "failure_ratio": 7,
                                                       "open_s": -1, "enabled": "yes"}})
    assert policy == BreakerPolicy()


def test_the_snapshot_names_route_backend_and_state():
    clock = [100.0]
    balancing = Balancing(lambda: clock[0])
    backend = BackendSpec(id=7, scheme="http", host="10.9.9.9", port=8080)
    routes = RouteTable([RouteSpec(id=901, name="snap", external_path="/s", methods=("GET",), backends=(backend,))])
    runtime = balancing.runtimes(routes)[901]
    for _ in range(5):
        runtime.release(runtime.pick("c"), True, clock[0])
    (row,) = [row for row in breakers.snapshot() if row.route == "snap"]
    assert (row.backend, row.state, row.consecutive_failures) == ("http://10.9.9.9:8080", "open", 5)
    assert row.opened_at is not None and abs(row.opened_at - time.time()) < 5


def test_every_breaker_key_the_control_plane_accepts_is_read(caplog):
    with caplog.at_level(logging.WARNING, logger="protocols.resilience"):
        breaker_policy("r", {"circuit_breaker": dict.fromkeys(CIRCUIT_BREAKER_RULES)})
    assert caplog.messages == []


def test_a_stored_misspelled_breaker_key_is_logged_with_its_path(caplog):
    with caplog.at_level(logging.WARNING, logger="protocols.resilience"):
        policy = breaker_policy("r", {"circuit_breaker": {"treshold": 3}})
    assert policy == BreakerPolicy()
    assert caplog.messages == ["route 'r': circuit_breaker.treshold is not a key Rusta knows, ignored"]
