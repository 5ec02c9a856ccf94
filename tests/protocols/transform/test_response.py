"""ResponseTransform on its own: status mappings with real conditions, header and body rules."""
from __future__ import annotations

import pytest

from protocols.block_errors import BlockError
from protocols.transform import ResponseTransform


def mapping(condition):
    return ResponseTransform.from_config({"status_code_mappings": [{"from": 404, "to": 200,
                                                                    "condition": condition}]})


def test_a_mapping_without_condition_always_applies():
    transform = ResponseTransform.from_config({"status_code_mappings": [{"from": 404, "to": 200}]})
    assert transform.map_status(404, "GET", "/x", []) == 200
    assert transform.map_status(500, "GET", "/x", []) == 500


def test_a_condition_limits_the_mapping_to_methods():
    transform = mapping({"methods": ["GET"]})
    assert transform.map_status(404, "GET", "/x", []) == 200
    assert transform.map_status(404, "DELETE", "/x", []) == 404


def test_a_condition_limits_the_mapping_to_paths_matched_whole():
    transform = mapping({"path": "^/health(/.*)?$"})
    assert transform.map_status(404, "GET", "/health/db", []) == 200
    assert transform.map_status(404, "GET", "/healthz", []) == 404


def test_a_condition_limits_the_mapping_to_upstream_header_values_and_presence():
    transform = mapping({"headers": {"x-mode": "maint.*", "retry-after": True, "x-real": False}})
    assert transform.map_status(404, "GET", "/", [(b"x-mode", b"maintenance"), (b"retry-after", b"5")]) == 200
    assert transform.map_status(404, "GET", "/", [(b"x-mode", b"normal"), (b"retry-after", b"5")]) == 404
    assert transform.map_status(404, "GET", "/", [(b"x-mode", b"maintenance")]) == 404
    assert transform.map_status(404, "GET", "/", [(b"x-mode", b"maint"), (b"retry-after", b"1"),
                                                  (b"x-real", b"1")]) == 404


def test_the_earlier_gateways_condition_string_is_evaluated():
    transform = mapping("path == '/health' && method != 'POST' && header.x-mode =~ 'maint.*'")
    assert transform.map_status(404, "GET", "/health", [(b"x-mode", b"maintenance")]) == 200
    assert transform.map_status(404, "POST", "/health", [(b"x-mode", b"maintenance")]) == 404
    assert transform.map_status(404, "GET", "/other", [(b"x-mode", b"maintenance")]) == 404


def test_an_unreadable_condition_string_is_an_error_not_ignored():
    with pytest.raises(BlockError) as caught:
        mapping("path is like /health")
    assert list(caught.value.errors) == ["status_code_mappings[0].condition"]


def test_the_first_matching_mapping_wins():
    transform = ResponseTransform.from_config({"status_code_mappings": [
        {"from": 503, "to": 200, "condition": {"path": "^/a$"}}, {"from": 503, "to": 502}]})
    assert transform.map_status(503, "GET", "/a", []) == 200
    assert transform.map_status(503, "GET", "/b", []) == 502


def test_a_mapping_to_a_status_without_body_is_refused():
    with pytest.raises(BlockError) as caught:
        ResponseTransform.from_config({"status_code_mappings": [{"from": 200, "to": 204}, {"from": 99, "to": 200}]})
    assert set(caught.value.errors) == {"status_code_mappings[0].to", "status_code_mappings[1].from"}


def test_response_headers_managed_by_the_gateway_are_refused():
    with pytest.raises(BlockError) as caught:
        ResponseTransform.from_config({"headers": {"set": {"Content-Length": "1", "X-Request-ID": "x"}}})
    assert set(caught.value.errors) == {"headers.set.Content-Length.name", "headers.set.X-Request-ID.name"}


def test_response_header_rules_and_body_rules_apply():
    transform = ResponseTransform.from_config({"headers": {"remove": ["x-powered-by"], "add": {"X-Gw": "rusta"}},
                                               "body": {"rename": {"user_name": "username"}}})
    assert transform.apply_headers([(b"x-powered-by", b"php")]) == [(b"x-gw", b"rusta")]
    assert transform.apply_json(b'{"user_name": "ann"}') == b'{"username":"ann"}'
