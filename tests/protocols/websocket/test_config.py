"""The `websocket` policy block: defaults, accepted values, and bad values falling back to the defaults."""
from __future__ import annotations

from protocols.websocket.config import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES, websocket_policy


def test_a_route_without_the_block_gets_one_mebibyte_and_five_minutes() -> None:
    policy = websocket_policy("r", {})
    assert (policy.max_message_bytes, policy.idle_timeout) == (1 << 20, 300.0)


def test_it_reads_both_limits() -> None:
    policy = websocket_policy("r", {"websocket": {"max_message_bytes": 4096, "idle_timeout_s": 2.5}})
    assert (policy.max_message_bytes, policy.idle_timeout) == (4096, 2.5)


def test_an_idle_timeout_of_zero_disables_it() -> None:
    assert websocket_policy("r", {"websocket": {"idle_timeout_s": 0}}).idle_timeout == 0


def test_bad_values_fall_back_to_the_defaults() -> None:
    policy = websocket_policy("r", {"websocket": {"max_message_bytes": "big", "idle_timeout_s": -1}})
    assert (policy.max_message_bytes, policy.idle_timeout) == (DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_IDLE_TIMEOUT)


def test_booleans_and_fractions_are_not_sizes() -> None:
    assert websocket_policy("r", {"websocket": {"max_message_bytes": True}}).max_message_bytes == 1 << 20
    assert websocket_policy("r", {"websocket": {"max_message_bytes": 10.5}}).max_message_bytes == 1 << 20


def test_a_block_that_is_not_an_object_gives_the_defaults() -> None:
    assert websocket_policy("r", {"websocket": [1, 2]}).max_message_bytes == 1 << 20
