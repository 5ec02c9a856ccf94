"""RequestTransform on its own: every operation, both block shapes, and errors named by path."""
from __future__ import annotations

import json

import pytest

from protocols.block_errors import BlockError
from protocols.transform import RequestTransform


def headers_after(rules, fields):
    return RequestTransform.from_config({"headers": rules}).apply_headers(fields)


def test_add_only_adds_a_header_that_is_absent():
    rule = [{"action": "add", "name": "X-Env", "value": "prod"}]
    assert headers_after(rule, [(b"accept", b"*/*")]) == [(b"accept", b"*/*"), (b"x-env", b"prod")]
    assert headers_after(rule, [(b"x-env", b"dev")]) == [(b"x-env", b"dev")]


def test_set_replaces_every_value():
    rule = [{"action": "set", "name": "X-Env", "value": "prod"}]
    assert headers_after(rule, [(b"x-env", b"a"), (b"x-env", b"b")]) == [(b"x-env", b"prod")]


def test_remove_drops_every_value():
    rule = {"remove": ["X-Debug"]}
    assert headers_after(rule, [(b"x-debug", b"1"), (b"a", b"b"), (b"x-debug", b"2")]) == [(b"a", b"b")]


def test_replace_rewrites_every_match_with_groups():
    rule = [{"action": "replace", "name": "User-Agent", "pattern": r"(\d+)\.(\d+)", "replacement": "v${1}_$2"}]
    assert headers_after(rule, [(b"user-agent", b"curl/7.81 lib/1.2")]) == [(b"user-agent", b"curl/v7_81 lib/v1_2")]


def test_rename_moves_values_and_replaces_the_target():
    rule = {"rename": {"X-Old": "X-New"}}
    assert headers_after(rule, [(b"x-new", b"stale"), (b"x-old", b"1")]) == [(b"x-new", b"1")]
    assert headers_after(rule, [(b"x-new", b"kept")]) == [(b"x-new", b"kept")]


def test_the_object_form_runs_remove_rename_replace_set_add_in_that_order():
    transform = RequestTransform.from_config({"headers": {
        "add": {"X-A": "added"}, "set": {"X-A": "set"}, "remove": ["X-A"]}})
    assert transform.apply_headers([(b"x-a", b"client")]) == [(b"x-a", b"set")]


def test_the_path_rule_rewrites_the_first_match_with_groups():
    transform = RequestTransform.from_config({"path": {"pattern": "^/api/v1/(.+)$", "replacement": "/$1"}})
    assert transform.apply_path("/api/v1/users/7") == "/users/7"
    assert transform.apply_path("/other") == "/other"


def test_path_rules_in_a_list_run_in_order_and_keep_a_leading_slash():
    transform = RequestTransform.from_config({"path": [
        {"pattern": "^/a/", "replacement": ""}, {"pattern": "^b", "replacement": "c"}]})
    assert transform.apply_path("/a/b/x") == "/c/x"


def test_query_parameters_are_added_set_removed_and_renamed_keeping_the_others_bytes():
    transform = RequestTransform.from_config({"query_params": [
        {"action": "add", "name": "k", "value": "a b"},
        {"action": "set", "name": "page", "value": "1"},
        {"action": "remove", "name": "debug"},
        {"action": "rename", "name": "q", "to": "query"},
    ]})
    assert transform.apply_query(b"q=x%2By&debug=1&page=9&z=%20&page=8") == b"query=x%2By&z=%20&k=a%20b&page=1"


def test_query_add_keeps_a_parameter_the_client_sent():
    transform = RequestTransform.from_config({"query_params": {"add": {"lang": "en"}}})
    assert transform.apply_query(b"lang=fr") == b"lang=fr"
    assert transform.apply_query(b"") == b"lang=en"


def test_json_body_fields_are_added_removed_renamed_and_set_by_dotted_path():
    transform = RequestTransform.from_config({"body": [
        {"action": "remove", "path": "password"},
        {"action": "rename", "path": "user_name", "to": "user.name"},
        {"action": "add", "path": "meta.via", "value": "rusta"},
        {"action": "add", "path": "keep", "value": "not this"},
        {"action": "set", "path": "items.0.id", "value": 9},
    ]})
    body = json.dumps({"password": "x", "user_name": "ann", "keep": 1, "items": [{"id": 1}]}).encode()
    assert json.loads(transform.apply_json(body)) == {
        "keep": 1, "items": [{"id": 9}], "user": {"name": "ann"}, "meta": {"via": "rusta"}}


def test_a_body_no_rule_changes_is_returned_byte_for_byte():
    transform = RequestTransform.from_config({"body": {"remove": ["absent"]}})
    body = b'{ "a" :  1 }'
    assert transform.apply_json(body) is body


def test_a_body_that_is_not_json_is_left_alone():
    transform = RequestTransform.from_config({"body": {"remove": ["a"]}})
    assert transform.apply_json(b"not json") == b"not json"
    assert not transform.body_applies([(b"content-type", b"text/plain")])
    assert not transform.body_applies([(b"content-type", b"application/json"), (b"content-encoding", b"gzip")])
    assert transform.body_applies([(b"content-type", b"application/problem+json; charset=utf-8")])


def test_a_body_over_the_cap_is_left_alone():
    transform = RequestTransform.from_config({"body": {"remove": ["a"]}, "max_body_bytes": 10})
    assert not transform.body_applies([(b"content-type", b"application/json")], length=11)
    big = b'{"a": "0123456789"}'
    assert transform.apply_json(big) == big


def test_every_problem_is_reported_by_path():
    with pytest.raises(BlockError) as caught:
        RequestTransform.from_config({
            "headers": [{"action": "set", "name": "Host", "value": "x"}, {"action": "bad", "name": "a"},
                        {"action": "add", "name": "X-A"}, {"action": "set", "name": "X-B", "value": "v",
                                                          "colour": "red"}],
            "path": {"pattern": "(a+)+", "replacement": "/$1"},
            "query_params": {"add": ["not", "an", "object"]},
            "body": [{"action": "rename", "path": "a..b", "to": "c"}],
            "max_body_bytes": 0,
        })
    errors = caught.value.errors
    assert set(errors) == {"headers[0].name", "headers[1].action", "headers[2].value", "headers[3].colour",
                           "path.pattern", "query_params.add", "body[0].path", "max_body_bytes"}
    assert "managed by the gateway" in errors["headers[0].name"][0]


def test_the_earlier_gateways_block_with_null_fields_compiles():
    block = {"headers": [{"action": "remove", "name": "Server", "value": None, "pattern": None,
                          "replacement": None}],
             "path": {"pattern": "^/api/v1/(.+)$", "replacement": "/$1"},
             "query_params": [{"action": "add", "name": "api_key", "value": "k"}]}
    transform = RequestTransform.from_config(block)
    assert transform.apply_headers([(b"server", b"x")]) == []
