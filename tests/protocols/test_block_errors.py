"""protocols.block_errors: every block's compiler raises the one BlockError, each problem at its path in the block."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from protocols.auth import JwtPolicy
from protocols.block_errors import BlockError, Issues
from protocols.cache import CachePolicy
from protocols.compression import CompressionPolicy
from protocols.guards import CorsPolicy, IpRules, RequestLimits, SecurityHeaders
from protocols.limits import RateLimitPolicy
from protocols.transform import RequestTransform, ResponseTransform

SECRET = "a-shared-secret-of-more-than-thirty-two-bytes-for-hs256"

# block name -> (its compiler, a block with one bad key, that key's path inside the block)
BAD_KEYS: dict[str, tuple[Callable[[Any], object], dict[str, Any], str]] = {
    "jwt": (JwtPolicy.from_config, {"secret": SECRET, "leeway_s": -1}, "leeway_s"),
    "rate_limit": (RateLimitPolicy.from_config, {"limit": 5, "window_s": 0}, "window_s"),
    "cors": (CorsPolicy.from_config, {"origins": ["https://app.example.com", 7]}, "origins[1]"),
    "ip_rules": (IpRules.from_config, {"allow": ["10.0.0.0/8", "example.com"]}, "allow[1]"),
    "limits": (RequestLimits.from_config, {"max_body_bytes": -1}, "max_body_bytes"),
    "security_headers": (SecurityHeaders.from_config, {"frame_options": "ALLOW-FROM x"}, "frame_options"),
    "request_transformation": (RequestTransform.from_config, {"headers": [{"action": "bad", "name": "X-A"}]},
                               "headers[0].action"),
    "response_transformation": (ResponseTransform.from_config, {"max_body_bytes": 0}, "max_body_bytes"),
    "cache": (CachePolicy.from_config, {"ttl_s": -1}, "ttl_s"),
    "compression": (CompressionPolicy.from_config, {"min_bytes": -1}, "min_bytes"),
}


@pytest.mark.parametrize("block", sorted(BAD_KEYS))
def test_every_compiler_raises_a_block_error_at_the_path_of_the_bad_key(block):
    compile_block, value, path = BAD_KEYS[block]
    with pytest.raises(BlockError) as caught:
        compile_block(value)
    assert list(caught.value.errors) == [path]
    [message] = caught.value.errors[path]
    assert not message.startswith((path, block))  # the path is the error's key; the message does not repeat it
    assert caught.value.prefixed(block) == {f"{block}.{path}": [message]}


def test_the_block_itself_is_the_empty_path_and_prefixes_to_the_block_name():
    error = BlockError({"": ["The jwt block needs a key."], "algorithms": ["Must be a non-empty list."]})
    assert error.prefixed("jwt") == {"jwt": ["The jwt block needs a key."],
                                     "jwt.algorithms": ["Must be a non-empty list."]}


def test_a_list_index_joins_the_block_name_without_a_dot():
    assert BlockError.at("[2]", "Must be an object.").prefixed("backends") == {"backends[2]": ["Must be an object."]}


def test_its_text_in_the_log_reads_path_then_message():
    error = BlockError({"": ["The block is off."], "origins[1]": ["Must be a non-empty string.", "Twice."]})
    assert str(error) == "The block is off.; origins[1]: Must be a non-empty string. Twice."


def test_issues_raise_nothing_when_empty_and_everything_at_once_otherwise():
    issues = Issues()
    issues.raise_if_any()
    issues.add("ttl_s", "Must be a number.")
    issues.add("methods[0]", "Must be GET or HEAD.")
    with pytest.raises(BlockError) as caught:
        issues.raise_if_any()
    assert caught.value.errors == {"ttl_s": ["Must be a number."], "methods[0]": ["Must be GET or HEAD."]}
