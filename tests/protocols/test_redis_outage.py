"""RedisOutage, shared by the rate limiter's and the cache's Redis stores: after a failure Redis is left alone
for the retry interval, then probed by one call; an operator sees one warning when it fails and one when it is
back, never its password."""
from __future__ import annotations

import logging

from protocols.redis_outage import RedisOutage, redacted


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def outage(clock: Clock) -> RedisOutage:
    return RedisOutage("Redis test store", "redis://:hunter2@cache:6379/1", "doing without",
                       retry_interval_s=1.0, clock=clock)


def test_a_healthy_store_always_tries_redis():
    assert not outage(Clock()).skipping()


def test_after_a_failure_redis_is_left_alone_then_probed_by_one_call():
    clock = Clock()
    state = outage(clock)
    state.failed(ConnectionError("refused"))
    clock.now += 0.5
    assert state.skipping()
    clock.now += 0.6
    assert [state.skipping() for _ in range(3)] == [False, True, True]  # the first call is the probe
    clock.now += 1.0
    assert not state.skipping()  # the probe failed silently (no answer yet): another one a second later


def test_the_probes_success_makes_it_healthy_again():
    clock = Clock()
    state = outage(clock)
    state.failed(ConnectionError("refused"))
    clock.now += 1.0
    assert not state.skipping()
    state.succeeded()
    assert state.healthy and not state.skipping() and state.failures == 1


def test_an_operator_sees_one_warning_down_and_one_back_without_the_password(caplog):
    clock = Clock()
    state = outage(clock)
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            state.failed(ConnectionError("refused"))
        state.succeeded()
        state.succeeded()
    assert [r.getMessage() for r in caplog.records] == [
        "Redis test store at redis://cache:6379/1 failed (refused); doing without for 1.0 s",
        "Redis test store at redis://cache:6379/1 is back",
    ]
    assert redacted("redis://user:pw@h:1/0") == "redis://h:1/0"
