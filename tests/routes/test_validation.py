"""routes.validation: what a route document may say, and the messages a user gets when it is wrong."""
from __future__ import annotations

import pytest

from routes.validation import normalize_route, unknown_keys, validate_route
from tests.support.compat import kairos_examples, load


def errors_of(data, others=()):
    return validate_route(normalize_route(data), others)


def test_a_complete_document_has_no_errors(route_doc):
    assert errors_of(route_doc()) == {}


def test_the_legacy_host_and_port_become_one_backend():
    doc = normalize_route({"host": "http://localhost", "port": 3000, "external_path": "/a", "methods": ["GET"]})
    assert doc["backends"] == [
        {"host": "http://localhost", "port": 3000, "weight": 1, "health_check_path": None, "enabled": True,
         "description": ""}
    ]
    assert "host" not in doc and "port" not in doc


def test_a_comment_key_is_dropped_without_error():
    data = {"_comment": "legacy", "host": "http://httpbin.org", "port": 80, "external_path": "/get",
            "methods": ["GET"], "name": "legacy"}
    assert "_comment" not in normalize_route(data)
    assert errors_of(data) == {}
    assert unknown_keys(data) == []


def test_methods_are_upper_cased_once_each(route_doc):
    assert normalize_route(route_doc(methods=["get", "GET", "post"]))["methods"] == ["GET", "POST"]


def test_an_unknown_method_is_named_in_the_error(route_doc):
    assert "FETCH" in errors_of(route_doc(methods=["GET", "FETCH"]))["methods"][0]


def test_a_path_without_leading_slash_is_refused(route_doc):
    assert errors_of(route_doc(external_path="users"))["external_path"] == ["The path must start with '/'."]


def test_an_internal_path_may_only_use_parameters_of_the_external_path(route_doc):
    assert "internal_path" in errors_of(route_doc(internal_path="/v1/{user}"))


def test_backend_errors_name_the_backend_by_position(route_doc):
    errors = errors_of(route_doc(backends=[{"host": "http://ok", "port": 80},
                                           {"host": "http://bad/path", "port": 70000}]))
    assert set(errors) == {"backends[1].host", "backends[1].port"}


def test_a_dns_route_accepts_a_bare_ip_address():
    data = {"name": "dns", "protocol": "dns", "external_path": "/dns", "methods": ["POST"],
            "backends": [{"host": "8.8.8.8", "port": 53}]}
    assert errors_of(data) == {}


def test_a_dns_route_without_a_path_or_methods_takes_dns_over_https_ones():
    doc = normalize_route({"name": "dns", "protocol": "dns", "backends": [{"host": "8.8.8.8"}]})
    assert (doc["external_path"], doc["methods"]) == ("/dns-query", ["GET", "POST"])
    assert validate_route(doc) == {}


def test_dns_routes_do_not_clash_with_each_other_but_do_with_http_routes(route_doc):
    first = {"id": 1, "name": "google", "protocol": "dns", "enabled": True, "external_path": "/dns-query",
             "match_host": "", "methods": ["GET", "POST"]}
    second = {"name": "quad9", "protocol": "dns", "backends": [{"host": "9.9.9.9"}]}
    assert errors_of(second, [first]) == {}
    assert "external_path" in errors_of(route_doc(external_path="/dns-query", methods=["GET"]), [first])


def test_a_backend_scheme_must_suit_the_protocol(route_doc):
    errors = errors_of(route_doc(protocol="websocket", backends=[{"host": "ftp://files", "port": 21}]))
    assert "backends[0].host" in errors


def test_a_missing_port_takes_the_schemes_default():
    doc = normalize_route({"external_path": "/a", "methods": ["GET"], "backends": [{"host": "https://api"}]})
    assert doc["backends"][0]["port"] == 443


def test_the_same_pattern_and_method_as_an_enabled_route_is_a_clash(route_doc):
    other = {"id": 7, "name": "older", "enabled": True, "external_path": "/users/{uid}", "match_host": "",
             "methods": ["GET"]}
    errors = errors_of(route_doc(), [other])
    assert "older" in errors["external_path"][0]


def test_get_clashes_with_head_because_get_serves_head(route_doc):
    other = {"id": 7, "name": "heads", "enabled": True, "external_path": "/users/{id}", "match_host": "",
             "methods": ["HEAD"]}
    assert "external_path" in errors_of(route_doc(methods=["GET"]), [other])


def test_a_disabled_route_does_not_clash(route_doc):
    other = {"id": 7, "name": "off", "enabled": False, "external_path": "/users/{id}", "match_host": "",
             "methods": ["GET"]}
    assert errors_of(route_doc(), [other]) == {}


def test_a_different_host_does_not_clash(route_doc):
    other = {"id": 7, "name": "api", "enabled": True, "external_path": "/users/{id}",
             "match_host": "api.example.com", "methods": ["GET"]}
    assert errors_of(route_doc(), [other]) == {}


def test_a_null_match_host_means_any_host(route_doc):
    assert normalize_route(route_doc(match_host=None))["match_host"] == ""


def test_retry_fields_are_checked_by_path(route_doc):
    errors = errors_of(route_doc(retry={"max_retries": 50, "backoff_multiplier": 0.5}))
    assert set(errors) == {"retry.max_retries", "retry.backoff_multiplier"}


def test_the_ai_fallback_must_point_at_a_backend(route_doc):
    errors = errors_of(route_doc(ai_policy={"enabled": True, "strategy": "content_analysis",
                                            "fallback_backend_index": 2}))
    assert "fallback_backend_index" in "".join(errors)


def test_unknown_keys_are_reported_by_path_inside_policies_and_backends(route_doc):
    data = route_doc(timeout=3, ai_policy={"enabled": True, "foo": 1, "_note": "x"},
                     backends=[{"host": "http://a", "port": 80, "tsl": True}])
    assert sorted(unknown_keys(data, "routers[2]")) == [
        "routers[2].ai_policy.foo", "routers[2].backends[0].tsl", "routers[2].timeout",
    ]


def test_a_backend_id_read_from_the_api_is_neither_unknown_nor_kept(route_doc):
    data = route_doc(backends=[{"id": 7, "host": "http://a", "port": 80}])
    assert unknown_keys(data) == []
    assert "id" not in normalize_route(data)["backends"][0]


@pytest.mark.parametrize("path", kairos_examples())
def test_every_router_of_the_earlier_gateways_examples_is_valid(path):
    for index, router in enumerate(load(path)["routers"]):
        data = dict(router, name=f"r{index}")
        assert errors_of(data) == {}, (path.name, index)


def test_paths_longer_than_the_database_column_are_refused(route_doc):
    long_path = "/" + "a" * 2048
    errors = errors_of(route_doc(internal_path=long_path,
                                 backends=[{"host": "http://a", "port": 80, "health_check_path": long_path}]))
    assert set(errors) == {"internal_path", "backends[0].health_check_path"}
