"""The compiled route table: which route wins, what it captures, and what a miss reports."""
from __future__ import annotations

import itertools

from protocols.table import BackendSpec, RouteSpec, RouteTable

_ids = itertools.count(1)
_BACKEND = (BackendSpec(id=1, scheme="http", host="127.0.0.1", port=9),)


def spec(name: str, path: str, methods: tuple[str, ...] = ("GET",), **extra: object) -> RouteSpec:
    return RouteSpec(id=next(_ids), name=name, external_path=path, methods=methods, backends=_BACKEND,
                     **extra)  # type: ignore[arg-type]


def winner(table: RouteTable, path: str, method: str = "GET", host: str = "example.com") -> str | None:
    route = table.match(method, host, path).route
    return route.name if route else None


def test_it_prefers_an_exact_static_route_over_a_parameter():
    table = RouteTable([spec("by-id", "/users/{id}"), spec("me", "/users/me")])
    assert winner(table, "/users/me") == "me"
    assert winner(table, "/users/42") == "by-id"


def test_it_prefers_the_pattern_with_more_static_segments():
    table = RouteTable([spec("two-params", "/a/{x}/{y}"), spec("one-param", "/a/{x}/c")])
    assert winner(table, "/a/1/c") == "one-param"


def test_it_prefers_the_longer_pattern_when_static_segments_tie():
    table = RouteTable([spec("short", "/{x}/b"), spec("long", "/api/{x}")])
    assert winner(table, "/api/b") == "long"


def test_it_prefers_higher_priority_when_patterns_are_equally_specific():
    table = RouteTable([spec("low", "/a/{x}", priority=1), spec("high", "/{x}/b", priority=5)])
    assert winner(table, "/a/b") == "high"


def test_it_prefers_the_older_route_when_everything_else_ties():
    table = RouteTable([spec("newer", "/{x}/b", order=2), spec("older", "/a/{x}", order=1)])
    assert winner(table, "/a/b") == "older"


def test_it_captures_parameters_and_fills_the_internal_template():
    table = RouteTable([spec("posts", "/users/{id}/posts/{post}", internal_path="/v2/posts/{post}/by/{id}")])
    match = table.match("GET", "example.com", "/users/7/posts/99")
    assert match.params == {"id": "7", "post": "99"}
    assert match.route is not None
    assert match.route.upstream_path(match.params, "/users/7/posts/99") == "/v2/posts/99/by/7"


def test_it_forwards_the_request_path_when_there_is_no_internal_template():
    table = RouteTable([spec("users", "/users/{id}")])
    match = table.match("GET", "example.com", "/users/7")
    assert match.route is not None
    assert match.route.upstream_path(match.params, "/users/7") == "/users/7"


def test_it_prefers_a_route_bound_to_the_request_host():
    table = RouteTable([spec("any-host", "/docs"), spec("api-host", "/docs", match_host="api.example.com")])
    assert winner(table, "/docs", host="api.example.com") == "api-host"
    assert winner(table, "/docs", host="www.example.com") == "any-host"


def test_it_matches_wildcard_hosts_on_subdomains_only():
    table = RouteTable([spec("wild", "/x", match_host="*.example.com")])
    assert winner(table, "/x", host="eu.api.example.com") == "wild"
    assert winner(table, "/x", host="example.com") is None


def test_it_ignores_a_trailing_slash_on_pattern_and_path():
    table = RouteTable([spec("slash", "/users/"), spec("param", "/items/{id}")])
    assert winner(table, "/users") == "slash"
    assert winner(table, "/users/") == "slash"
    assert winner(table, "/items/3/") == "param"


def test_it_does_not_let_a_parameter_match_an_empty_segment():
    table = RouteTable([spec("param", "/items/{id}/edit")])
    assert winner(table, "/items//edit") is None


def test_it_reports_allowed_methods_when_only_the_method_is_wrong():
    table = RouteTable([spec("read", "/things/{id}", ("GET",)), spec("write", "/things/{id}", ("PUT",),
                                                                       match_host="example.com")])
    match = table.match("DELETE", "example.com", "/things/1")
    assert match.route is None
    assert match.allow == "GET, HEAD, PUT"


def test_it_answers_head_on_get_routes():
    table = RouteTable([spec("read", "/things")])
    assert winner(table, "/things", method="HEAD") == "read"


def test_it_reports_nothing_when_no_path_matches():
    table = RouteTable([spec("read", "/things")])
    match = table.match("GET", "example.com", "/other")
    assert match.route is None
    assert match.allow is None
