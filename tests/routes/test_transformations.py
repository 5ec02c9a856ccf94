"""Validation of the transformation, cache and compression blocks: field-level messages by path, through the
service layer the API, admin and import share, and the blocks carried through the route document."""
from __future__ import annotations

import pytest

from protocols.shaping import RouteShaping
from routes import services
from routes.models import Route
from routes.snapshot import route_spec
from routes.validation import unknown_keys

pytestmark = pytest.mark.django_db

REQUEST = {"headers": [{"action": "set", "name": "X-Env", "value": "prod"}],
           "path": {"pattern": "^/v1/users/(.+)$", "replacement": "/people/$1"},
           "query_params": {"remove": ["debug"]}, "body": {"remove": ["password"]}}
RESPONSE = {"headers": {"remove": ["X-Powered-By"]},
            "status_code_mappings": [{"from": 404, "to": 200, "condition": "path == '/health'"}]}


def errors_of(route_doc, **fields):
    with pytest.raises(services.ConfigError) as caught:
        services.prepare_route(route_doc(**fields))
    return caught.value.errors


def test_valid_blocks_are_saved_and_reach_the_data_plane(route_doc):
    route = services.save_route(route_doc(request_transformation=REQUEST, response_transformation=RESPONSE,
                                          cache={"ttl_s": 30, "vary_headers": ["Accept-Language"]},
                                          compression={"min_bytes": 512}), actor=None, source="api")
    doc = services.route_document(Route.objects.get(pk=route.pk))
    assert doc["cache"] == {"ttl_s": 30, "vary_headers": ["Accept-Language"]}
    assert doc["compression"] == {"min_bytes": 512}
    shaping = RouteShaping.from_policies(route_spec(route).policies)
    assert shaping is not None and shaping.cache is not None and shaping.cache.ttl_s == 30
    assert shaping.compression is not None and shaping.compression.min_bytes == 512
    assert shaping.request is not None and shaping.request.apply_path("/v1/users/7") == "/people/7"


def test_a_route_without_any_block_has_no_shaping(route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    assert RouteShaping.from_policies(route_spec(route).policies) is None


def test_a_catastrophic_regex_is_refused_on_its_field(route_doc):
    errors = errors_of(route_doc, request_transformation={"headers": [
        {"action": "replace", "name": "User-Agent", "pattern": "(a+)+$", "replacement": "x"}]})
    assert list(errors) == ["request_transformation.headers[0].pattern"]
    assert "exponentially" in errors["request_transformation.headers[0].pattern"][0]


def test_each_problem_is_named_by_path(route_doc):
    errors = errors_of(
        route_doc,
        request_transformation={"path": {"pattern": "(", "replacement": "/"}, "query_params": [{"action": "x"}]},
        response_transformation={"status_code_mappings": [{"from": 404, "to": 304, "condition": "nonsense"}],
                                 "headers": [{"action": "set", "name": "Content-Length", "value": "1"}]},
        cache={"ttl_s": "long", "methods": ["POST"]},
        compression={"algorithms": ["lzma"]},
    )
    assert set(errors) == {
        "request_transformation.path.pattern", "request_transformation.query_params[0].action",
        "response_transformation.status_code_mappings[0].to",
        "response_transformation.status_code_mappings[0].condition",
        "response_transformation.headers[0].name", "cache.ttl_s", "cache.methods", "compression.algorithms",
    }


def test_a_block_that_is_not_an_object_is_refused(route_doc):
    errors = errors_of(route_doc, request_transformation=["headers"], cache=30)
    assert errors == {"request_transformation": ["Must be an object or null."],
                      "cache": ['Must be an object (or null for no caching), like {"ttl_s": 60}.']}


def test_an_unknown_key_inside_a_rule_is_an_error(route_doc):
    errors = errors_of(route_doc, request_transformation={"headers": [
        {"action": "set", "name": "X-A", "value": "1", "vlaue": "typo"}]})
    assert list(errors) == ["request_transformation.headers[0].vlaue"]


def test_unknown_top_level_keys_of_the_blocks_are_reported_by_path(route_doc):
    doc = route_doc(cache={"ttl": 5}, compression={"level": 9}, request_transformation={"header": []})
    assert set(unknown_keys(doc)) == {"cache.ttl", "compression.level", "request_transformation.header"}


def test_the_earlier_gateways_blocks_validate_unchanged(route_doc):
    legacy = {"headers": [{"action": "add", "name": "X-Forwarded-By", "value": "kairos-gateway", "pattern": None,
                           "replacement": None}],
              "path": {"pattern": "^/api/v1/(.+)$", "replacement": "/$1"}, "query_params": []}
    services.prepare_route(route_doc(request_transformation=legacy, response_transformation={
        "headers": [{"action": "remove", "name": "Server", "value": None, "pattern": None, "replacement": None}],
        "status_code_mappings": [{"from": 404, "to": 200, "condition": None}]}))


def test_a_dry_run_through_the_api_answers_the_field_errors(api, route_doc):
    response = api.post("/api/routes/validate/", route_doc(cache={"stale_if_error_s": -5}), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"cache.stale_if_error_s": ["Must be a number from 0 to 604800."]}


def test_the_admin_shows_a_rule_error_on_its_json_field(client, staff_user):
    from django.urls import reverse

    from tests.routes.conftest import PASSWORD
    from tests.routes.test_admin import TWO_BACKENDS, route_form

    assert client.login(username="alice", password=PASSWORD)
    data = route_form(TWO_BACKENDS, request_transformation='{"headers": [{"action": "set", "name": "Host", '
                                                          '"value": "x"}]}', cache='{"ttl_s": -1}')
    response = client.post(reverse("admin:routes_route_add"), data)
    errors = response.context["adminform"].form.errors
    assert errors["request_transformation"] == [
        "headers[0].name: Host is managed by the gateway and cannot be changed by a rule."]
    assert errors["cache"] == ["ttl_s: Must be a number from 0 to 31536000."]
    assert not Route.objects.exists()


def test_saving_times_every_pattern_and_refuses_a_slow_one_at_its_path(route_doc):
    # x*x*x*y passes the static check (no three repetitions each overlap what follows) but is cubic.
    errors = errors_of(route_doc, response_transformation={"status_code_mappings": [
        {"from": 404, "to": 200, "condition": {"path": "^/special$", "headers": {"x-a": "x*x*x*y"}}}]})
    assert list(errors) == ["response_transformation.status_code_mappings[0].condition.headers.x-a"]
    assert errors["response_transformation.status_code_mappings[0].condition.headers.x-a"][0].startswith(
        "The regular expression is too slow on input like 'xxxxxxxxxx")


def test_the_data_plane_builds_a_route_without_timing_its_patterns():
    # The probe is a save-time check: a table build neither starts processes nor leaves a route out on timing.
    shaping = RouteShaping.from_policies({"request_transformation": {"headers": [
        {"action": "replace", "name": "X-A", "pattern": "x*x*x*y", "replacement": "z"}]}})
    assert shaping is not None and shaping.request is not None


def test_a_case_insensitive_pattern_is_saved(route_doc):
    # The control plane's former check raised TypeError on (?i)[a-z] ('ß'.upper() is two characters).
    services.prepare_route(route_doc(request_transformation={"headers": [
        {"action": "replace", "name": "X-A", "pattern": "(?i)^[a-z]+$", "replacement": "z"}]}))


def test_a_pattern_nested_too_deeply_is_refused_on_its_field(route_doc):
    pattern = "(" * 199 + "a" + "){2}" * 199
    errors = errors_of(route_doc, request_transformation={"path": {"pattern": pattern, "replacement": "/"}})
    assert errors == {"request_transformation.path.pattern": [
        "Not a usable regular expression: it nests too deeply."]}


def test_a_bounded_but_ambiguous_repetition_is_refused(route_doc):
    errors = errors_of(route_doc, request_transformation={"headers": [
        {"action": "replace", "name": "X-A", "pattern": "(?:a|aa){1,30}b", "replacement": ""}]})
    assert list(errors) == ["request_transformation.headers[0].pattern"]
