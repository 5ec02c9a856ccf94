"""Guards.from_config: which block applies (route over global), errors by path, and the response fields."""
from __future__ import annotations

import pytest

from protocols.block_errors import BlockError
from protocols.guards import ClientForbidden, Guards, choose_blocks, origin_of


def test_a_route_block_replaces_the_global_block_of_the_same_name():
    chosen = choose_blocks({"limits": {"max_body_bytes": 5}}, {"limits": {"max_url_length": 9}, "cors": {"a": 1}})
    assert chosen["limits"] == {"max_body_bytes": 5}
    assert chosen["cors"] == {"a": 1}


def test_keys_a_route_block_leaves_out_take_the_defaults_not_the_global_ones():
    guards = Guards.from_config({"limits": {"max_body_bytes": 5}}, {"limits": {"max_url_length": 9}})
    assert guards.limits.max_url_length == 8192


def test_a_disabled_route_block_switches_the_global_one_off():
    guards = Guards.from_config({"ip_rules": {"enabled": False}}, {"ip_rules": {"deny": ["0.0.0.0/0"]}})
    guards.check_request({"path": "/", "headers": []}, "192.0.2.1")


def test_a_global_block_applies_to_routes_without_their_own():
    guards = Guards.from_config({"retry": {}}, {"ip_rules": {"deny": ["192.0.2.0/24"]}})
    with pytest.raises(ClientForbidden):
        guards.check_request({"path": "/", "headers": []}, "192.0.2.1")


def test_every_bad_block_is_reported_at_once():
    with pytest.raises(BlockError) as caught:
        Guards.from_config({"cors": {"origins": ["null"]}, "limits": {"max_body_bytes": -1}}, None)
    assert set(caught.value.errors) == {"cors.origins[0]", "limits.max_body_bytes"}


def test_without_any_block_security_headers_and_limits_are_on():
    guards = Guards.from_config(None, None)
    assert guards.cors is None and guards.ip_rules is None
    names = [name for name, _ in guards.response_headers([], b"", False)]
    assert names == [b"x-content-type-options", b"x-frame-options", b"referrer-policy"]


def test_a_cors_route_replaces_the_backends_own_cors_fields():
    guards = Guards.from_config({"cors": {"origins": ["https://app.test"]}}, None)
    headers = [(b"Access-Control-Allow-Origin", b"*"), (b"content-type", b"text/plain")]
    out = guards.response_headers(headers, b"https://app.test", False)
    assert [value for name, value in out if name.lower() == b"access-control-allow-origin"] == [b"https://app.test"]


def test_without_cors_the_backends_cors_fields_pass_through():
    out = Guards.from_config(None, None).response_headers([(b"access-control-allow-origin", b"*")], b"x", False)
    assert (b"access-control-allow-origin", b"*") in out


def test_a_preflight_is_not_answered_without_a_cors_policy():
    headers = [(b"origin", b"https://a.test"), (b"access-control-request-method", b"GET")]
    assert Guards.from_config(None, None).cors_preflight("OPTIONS", headers) is None


def test_origin_of_finds_the_origin_field():
    assert origin_of([(b"host", b"x"), (b"origin", b"https://a.test")]) == b"https://a.test"
    assert origin_of([(b"host", b"x")]) == b""


def test_the_preflight_answer_comes_complete_with_security_headers():
    guards = Guards.from_config({"cors": {"origins": ["https://a.test"]}}, None)
    headers = [(b"origin", b"https://a.test"), (b"access-control-request-method", b"GET"),
               (b"access-control-request-headers", b"X-Trace")]
    status, fields = guards.cors_preflight("OPTIONS", headers, https=True)
    names = {name for name, _ in fields}
    assert status == 204
    assert {b"access-control-allow-origin", b"access-control-allow-headers", b"x-content-type-options",
            b"strict-transport-security"} <= names
