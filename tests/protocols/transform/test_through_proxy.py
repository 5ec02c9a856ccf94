"""Every transformation operation on real traffic: a real client, ProxyApp under uvicorn, and the real test
upstream, which echoes what it received."""
from __future__ import annotations

import hashlib
import json
from urllib.parse import quote

import pytest

from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer, pattern

REQUEST_RULES = {
    "headers": [
        {"action": "add", "name": "X-Added", "value": "yes"},
        {"action": "add", "name": "X-Kept", "value": "not this"},
        {"action": "set", "name": "X-Env", "value": "prod"},
        {"action": "remove", "name": "X-Debug"},
        {"action": "replace", "name": "User-Agent", "pattern": r"(\d+)\.(\d+)", "replacement": "v${1}_$2"},
        {"action": "rename", "name": "X-Old", "to": "X-New"},
    ],
    "path": {"pattern": r"^/items/(\d+)$", "replacement": "/v2/things/$1"},
    "query_params": [
        {"action": "add", "name": "lang", "value": "en"},
        {"action": "set", "name": "page", "value": "1"},
        {"action": "remove", "name": "debug"},
        {"action": "rename", "name": "q", "to": "query"},
    ],
    "body": {"remove": ["password"], "add": {"meta.via": "rusta"}, "rename": {"user_name": "username"}},
}
RESPONSE_RULES = {
    "headers": [
        {"action": "add", "name": "X-Gateway", "value": "rusta"},
        {"action": "set", "name": "X-Version", "value": "2"},
        {"action": "remove", "name": "X-Powered-By"},
        {"action": "replace", "name": "X-Server-Id", "pattern": r"^node-(\d+)$", "replacement": "n$1"},
        {"action": "rename", "name": "X-Internal", "to": "X-Public"},
    ],
    "status_code_mappings": [
        {"from": 404, "to": 200, "condition": "path == '/s/status/404'"},
        {"from": 503, "to": 200, "condition": {"methods": ["GET"], "headers": {"x-mode": "maint.*"}}},
    ],
    "body": {"remove": ["secret"], "add": {"served_by": "rusta"}},
}


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


@pytest.fixture(scope="module")
def proxy(upstream):
    routes = [
        route("requests", "/api/items/{id}", upstream.port, internal_path="/items/{id}", methods=("GET", "POST"),
              policies={"request_transformation": REQUEST_RULES}),
        route("uploads", "/up", upstream.port, internal_path="/upload", methods=("POST",),
              policies={"request_transformation": {"body": {"remove": ["password"]}, "max_body_bytes": 1000}}),
        route("responses", "/r/{rest}", upstream.port, internal_path="/{rest}",
              policies={"response_transformation": RESPONSE_RULES}),
        route("statuses", "/s/status/{code}", upstream.port, internal_path="/status/{code}",
              policies={"response_transformation": RESPONSE_RULES}),
        route("capped", "/c/{rest}", upstream.port, internal_path="/{rest}",
              policies={"response_transformation": {"body": {"remove": ["a"]}, "max_body_bytes": 100}}),
    ]
    with ProxyServer(routes) as server:
        yield server


def echo(proxy, target, headers=(), method="GET", body=None):
    reply = proxy.call(method, target, [("Host", "gw.test"), *headers], body)
    assert reply.status == 200, reply.body
    return reply.json()


def sent_header(seen, name):
    return [value for key, value in seen["headers"] if key.lower() == name.lower()]


def test_request_header_add_only_adds_when_absent(proxy):
    seen = echo(proxy, "/api/items/7", [("X-Kept", "client")])
    assert sent_header(seen, "x-added") == ["yes"]
    assert sent_header(seen, "x-kept") == ["client"]


def test_request_header_set_replaces_the_clients_values(proxy):
    seen = echo(proxy, "/api/items/7", [("X-Env", "dev"), ("X-Env", "test")])
    assert sent_header(seen, "x-env") == ["prod"]


def test_request_header_remove_drops_it(proxy):
    seen = echo(proxy, "/api/items/7", [("X-Debug", "1")])
    assert sent_header(seen, "x-debug") == []


def test_request_header_replace_rewrites_the_value_with_groups(proxy):
    seen = echo(proxy, "/api/items/7", [("User-Agent", "probe/3.14")])
    assert sent_header(seen, "user-agent") == ["probe/v3_14"]


def test_request_header_rename_moves_the_value(proxy):
    seen = echo(proxy, "/api/items/7", [("X-Old", "legacy")])
    assert sent_header(seen, "x-old") == [] and sent_header(seen, "x-new") == ["legacy"]


def test_the_gateways_own_fields_are_still_added_after_the_rules(proxy):
    seen = echo(proxy, "/api/items/7")
    assert sent_header(seen, "x-forwarded-host") == ["gw.test"]
    assert sent_header(seen, "via") == ["1.1 rusta"]


def test_the_path_is_rewritten_after_parameter_substitution(proxy):
    assert echo(proxy, "/api/items/42")["path"] == "/v2/things/42"


def test_query_parameters_are_added_set_removed_and_renamed(proxy):
    seen = echo(proxy, "/api/items/7?q=a%2Bb&debug=1&page=5&keep=%20x")
    assert seen["query"] == "query=a%2Bb&keep=%20x&lang=en&page=1"


def test_a_json_request_body_is_edited_and_reframed(proxy, upstream):
    body = json.dumps({"user_name": "ann", "password": "hunter2"}).encode()
    seen = echo(proxy, "/api/items/7", [("Content-Type", "application/json")], "POST", body)
    expected = b'{"username":"ann","meta":{"via":"rusta"}}'
    assert seen["body_length"] == len(expected)
    assert upstream.requests[-1].header("content-length") == [str(len(expected))]


def test_a_json_request_body_arrives_with_the_edited_bytes(proxy):
    reply = proxy.call("POST", "/up", [("Host", "gw"), ("Content-Type", "application/json")],
                       b'{"password": "x", "a": 1}')
    assert reply.json()["sha256"] == hashlib.sha256(b'{"a":1}').hexdigest()


def test_a_request_body_that_is_not_json_goes_through_untouched(proxy):
    body = b'{"password": "x"}'
    reply = proxy.call("POST", "/up", [("Host", "gw"), ("Content-Type", "text/plain")], body)
    assert reply.json()["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_json_request_body_over_the_cap_goes_through_untouched(proxy):
    body = json.dumps({"password": "x", "pad": "p" * 5000}).encode()
    reply = proxy.call("POST", "/up", [("Host", "gw"), ("Content-Type", "application/json"),
                                       ("Transfer-Encoding", "chunked")], b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    assert reply.json() == {"length": len(body), "sha256": hashlib.sha256(body).hexdigest()}


def respond_target(prefix, status=200, headers=(), body=""):
    query = f"status={status}&body={quote(body)}" + "".join(f"&header={quote(h)}" for h in headers)
    return f"{prefix}/respond?{query}"


def test_response_headers_are_added_set_removed_replaced_and_renamed(proxy):
    reply = proxy.call("GET", respond_target("/r", headers=[
        "X-Version: 1", "X-Powered-By: php", "X-Server-Id: node-12", "X-Internal: secret-ish"]))
    assert reply.header("x-gateway") == ["rusta"]
    assert reply.header("x-version") == ["2"]
    assert reply.header("x-powered-by") == []
    assert reply.header("x-server-id") == ["n12"]
    assert reply.header("x-internal") == [] and reply.header("x-public") == ["secret-ish"]


def test_a_status_mapping_applies_when_its_path_condition_holds(proxy):
    assert proxy.call("GET", "/s/status/404").status == 200
    assert proxy.call("GET", respond_target("/r", 404)).status == 404  # another path


def test_a_status_mapping_applies_when_the_upstream_header_condition_holds(proxy):
    maintenance = respond_target("/r", 503, ["X-Mode: maintenance"])
    assert proxy.call("GET", maintenance).status == 200
    assert proxy.call("POST", maintenance).status == 503
    assert proxy.call("GET", respond_target("/r", 503, ["X-Mode: normal"])).status == 503


def test_a_json_response_body_is_edited_with_a_correct_content_length(proxy):
    reply = proxy.call("GET", respond_target("/r", headers=["Content-Type: application/json"],
                                             body='{"secret": 1, "ok": true}'))
    assert reply.json() == {"ok": True, "served_by": "rusta"}
    assert reply.header("content-length") == [str(len(reply.body))]


def test_a_response_body_that_is_not_json_streams_through_untouched(proxy):
    reply = proxy.call("GET", "/r/stream?bytes=300000&chunked=1")
    assert reply.body == pattern(300000)


def test_a_json_response_over_the_cap_streams_through_untouched(proxy):
    body = json.dumps({"a": 1, "pad": "x" * 500})
    reply = proxy.call("GET", respond_target("/c", headers=["Content-Type: application/json"], body=body))
    assert reply.body == body.encode()
    small = proxy.call("GET", respond_target("/c", headers=["Content-Type: application/json"], body='{"a":1,"b":2}'))
    assert small.json() == {"b": 2}
