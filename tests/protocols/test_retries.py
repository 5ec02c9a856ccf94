"""Retry arithmetic: the retry block's defaults, backoff with full jitter, Retry-After, and the retry budget."""
from __future__ import annotations

import logging
import random

import pytest

from protocols.resilience import RETRY_RULES, RetryPolicy, retry_policy
from protocols.retries import RetryBudget, backoff, retry_after


def test_without_a_block_one_retry_on_connection_errors():
    policy = retry_policy("r", None)
    assert (policy.max_retries, policy.on_connection_error, policy.on_status) == (1, True, frozenset())
    assert (policy.initial_backoff, policy.max_backoff, policy.backoff_multiplier) == (0.025, 1.0, 2.0)
    assert (policy.budget_ratio, policy.budget_window, policy.budget_min_per_s) == (0.2, 10.0, 3.0)


def test_a_block_is_read_in_the_earlier_gateways_shape():
    policy = retry_policy("r", {"retry": {"max_retries": 3, "initial_backoff_ms": 50, "max_backoff_ms": 400,
                                          "backoff_multiplier": 3, "retry_on_status_codes": [502, 503],
                                          "retry_on_connection_error": False}})
    assert policy == RetryPolicy(max_retries=3, initial_backoff=0.05, max_backoff=0.4, backoff_multiplier=3.0,
                                 on_status=frozenset({502, 503}), on_connection_error=False)


def test_a_block_can_turn_retries_off():
    assert retry_policy("r", {"retry": {"max_retries": 0}}).max_retries == 0


def test_out_of_range_values_fall_back_to_defaults():
    policy = retry_policy("r", {"retry": {"max_retries": 11, "retry_on_status_codes": ["503"],
                                          "backoff_multiplier": 0.5}})
    assert (policy.max_retries, policy.on_status, policy.backoff_multiplier) == (1, frozenset(), 2.0)


@pytest.mark.parametrize("method", ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"])
def test_idempotent_methods_may_be_retried(method):
    assert RetryPolicy().allows(method)


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_other_methods_only_when_the_route_opts_in(method):
    assert not RetryPolicy().allows(method)
    assert RetryPolicy(non_idempotent=True).allows(method)


def test_backoff_is_jittered_below_a_cap_that_grows_to_the_maximum():
    policy = RetryPolicy(initial_backoff=0.1, max_backoff=0.5, backoff_multiplier=2)
    rand = random.Random(7)
    for retry, cap in ((1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (9, 0.5)):
        delays = [backoff(policy, retry, rand) for _ in range(500)]
        assert 0 <= min(delays) < cap * 0.1
        assert cap * 0.9 < max(delays) <= cap


def test_retry_after_in_seconds_is_read_and_dates_are_ignored():
    assert retry_after([(b"content-type", b"x"), (b"retry-after", b" 3 ")]) == 3.0
    assert retry_after([(b"retry-after", b"Wed, 21 Oct 2015 07:28:00 GMT")]) is None
    assert retry_after([]) is None


def test_the_budget_allows_the_ratio_of_requests_plus_the_floor():
    budget = RetryBudget(RetryPolicy(budget_ratio=0.2, budget_window=10, budget_min_per_s=0.5), now=0.0)
    for _ in range(100):
        budget.add(1.0)
    granted = sum(budget.withdraw(1.0) for _ in range(100))
    assert granted == 20 + 5


def test_the_budget_refills_as_the_window_moves_on():
    budget = RetryBudget(RetryPolicy(budget_ratio=0.5, budget_window=10, budget_min_per_s=0), now=0.0)
    for _ in range(10):
        budget.add(0.0)
    assert sum(budget.withdraw(0.0) for _ in range(10)) == 5
    for _ in range(10):
        budget.add(10.5)
    assert sum(budget.withdraw(10.5) for _ in range(10)) == 5


def test_a_quiet_route_can_still_retry_on_the_floor():
    budget = RetryBudget(RetryPolicy(budget_min_per_s=3, budget_window=10), now=0.0)
    budget.add(0.0)
    assert sum(budget.withdraw(0.0) for _ in range(50)) == 30


def test_every_retry_key_the_control_plane_accepts_is_read(caplog):
    with caplog.at_level(logging.WARNING, logger="protocols.resilience"):
        retry_policy("r", {"retry": dict.fromkeys(RETRY_RULES)})
    assert caplog.messages == []


def test_a_stored_misspelled_retry_key_is_logged_with_its_path(caplog):
    with caplog.at_level(logging.WARNING, logger="protocols.resilience"):
        policy = retry_policy("r", {"retry": {"max_retires": 5, "_comment": "a note"}})
    assert policy.max_retries == 1
    assert caplog.messages == ["route 'r': retry.max_retires is not a key Rusta knows, ignored"]
