"""The `consumer` rate-limit scope, and PerUser counting a consumer rather than a subject when there is one."""
from __future__ import annotations

from typing import Any

import pytest

from protocols.block_errors import BlockError
from protocols.limits import RateLimitPolicy, limit_key


def key(block: dict[str, Any], user: str | None = None, consumer: str | None = None) -> str | None:
    policy = RateLimitPolicy.from_config({"limit": 5, **block}, name="p")
    return limit_key(policy, "orders", "203.0.113.9", user, (), consumer)


def test_the_consumer_scope_keys_by_the_consumers_name():
    assert key({"scope": ["consumer"]}, consumer="billing").endswith("|consumer=billing")


def test_per_consumer_is_the_consumer_scope():
    assert key({"strategy": "PerConsumer"}, consumer="billing") == key({"scope": ["consumer"]}, consumer="billing")


def test_a_request_without_a_consumer_falls_back_to_the_client_address():
    assert key({"scope": ["consumer"]}, user="alice").endswith("|ip=203.0.113.9")


def test_a_request_without_a_consumer_can_be_left_unlimited():
    assert key({"scope": ["consumer"], "missing_identity": "skip"}, user="alice") is None


def test_per_user_counts_the_consumer_when_there_is_one():
    assert key({"strategy": "PerUser"}, user="alice", consumer="billing") == \
        key({"strategy": "PerUser"}, user="bob", consumer="billing")


def test_per_user_keeps_counting_the_subject_without_a_consumer():
    assert key({"strategy": "PerUser"}, user="alice").endswith("|user=alice")


def test_a_subject_named_like_a_consumer_does_not_share_its_counter():
    assert key({"strategy": "PerUser"}, user="billing") != key({"strategy": "PerUser"}, consumer="billing")


def test_an_unknown_scope_still_names_consumer_among_the_choices():
    with pytest.raises(BlockError) as refused:
        RateLimitPolicy.from_config({"limit": 5, "scope": ["customer"]})
    assert "consumer" in str(refused.value)
