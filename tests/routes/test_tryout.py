"""The admin's "try it" panel on the route page: a sample request and answer, shown as the proxy's own code turns
them, with the route's stored rules or edited ones, errors named by path."""
from __future__ import annotations

import json

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from routes import services
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
RULES = {"headers": {"set": {"X-Env": "prod"}, "remove": ["X-Debug"]},
         "path": {"pattern": "^/v1/users/(\\d+)$", "replacement": "/people/$1"},
         "query_params": {"add": {"lang": "en"}}, "body": {"remove": ["password"]}}
RESPONSE_RULES = {"headers": {"add": {"X-Gateway": "rusta"}},
                  "status_code_mappings": [{"from": 404, "to": 200, "condition": {"methods": ["GET"]}}],
                  "body": {"add": {"served_by": "rusta"}}}


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


@pytest.fixture
def route(route_doc):
    return services.save_route(route_doc(request_transformation=RULES, response_transformation=RESPONSE_RULES,
                                         cache={"ttl_s": 60}, compression={"min_bytes": 0}),
                               actor=None, source="api")


def sample(**fields):
    data = {"request_transformation": json.dumps(RULES), "response_transformation": json.dumps(RESPONSE_RULES),
            "method": "PUT", "path": "/users/7", "query": "debug=1",
            "request_headers": "X-Debug: 1\nContent-Type: application/json\nAccept-Encoding: gzip",
            "request_body": '{"name": "ann", "password": "x"}', "status": "404",
            "response_headers": "Content-Type: application/json", "response_body": '{"ok": true}'}
    data.update(fields)
    return data


def test_the_route_page_links_to_the_panel(admin_client, route):
    page = admin_client.get(reverse("admin:routes_route_change", args=[route.pk])).content.decode()
    assert reverse("admin:routes_route_try", args=[route.pk]) in page


def test_the_panel_starts_with_the_routes_stored_rules(admin_client, route):
    response = admin_client.get(reverse("admin:routes_route_try", args=[route.pk]))
    assert response.status_code == 200
    form = response.context["form"]
    assert json.loads(form.initial["request_transformation"]) == RULES
    assert form.initial["path"] == "/users/id"


def test_the_panel_shows_what_the_request_and_answer_become(admin_client, route):
    response = admin_client.post(reverse("admin:routes_route_try", args=[route.pk]), sample())
    result = response.context["result"]
    assert result.errors == {}
    # The route's internal path /v1/users/{id} is filled in first, then the path rule runs.
    assert result.request.line == "PUT /people/7?debug=1&lang=en"
    assert ("x-env", "prod") in result.request.headers and all(n != "x-debug" for n, _ in result.request.headers)
    assert json.loads(result.request.body) == {"name": "ann"}
    # PUT is not in the mapping's condition: the 404 stays.
    assert result.response.line == "404"
    assert ("x-gateway", "rusta") in result.response.headers
    assert json.loads(result.response.body) == {"ok": True, "served_by": "rusta"}
    page = response.content.decode()
    assert "PUT /people/7?debug=1&amp;lang=en" in page


def test_a_condition_is_evaluated_on_the_sample(admin_client, route):
    response = admin_client.post(reverse("admin:routes_route_try", args=[route.pk]), sample(method="GET"))
    assert response.context["result"].response.line == "200"
    notes = " ".join(response.context["result"].notes)
    assert "Compression: gzip." in notes and "Cache: stored, fresh for 60 s" in notes


def test_edited_rules_are_tried_without_being_saved(admin_client, route):
    edited = {"headers": [{"action": "add", "name": "X-Tried", "value": "1"}]}
    response = admin_client.post(reverse("admin:routes_route_try", args=[route.pk]),
                                 sample(request_transformation=json.dumps(edited)))
    assert ("x-tried", "1") in response.context["result"].request.headers
    route.refresh_from_db()
    assert route.request_transformation == RULES


def test_errors_in_the_rules_are_shown_by_path(admin_client, route):
    broken = {"headers": [{"action": "replace", "name": "A", "pattern": "(a*)*$", "replacement": "x"}]}
    response = admin_client.post(reverse("admin:routes_route_try", args=[route.pk]),
                                 sample(request_transformation=json.dumps(broken), response_transformation="{oops"))
    assert "Not valid JSON" in response.context["form"].errors["response_transformation"][0]
    response = admin_client.post(reverse("admin:routes_route_try", args=[route.pk]),
                                 sample(request_transformation=json.dumps(broken)))
    assert list(response.context["result"].errors) == ["request_transformation.headers[0].pattern"]
    assert "request_transformation.headers[0].pattern" in response.content.decode()


def test_a_path_outside_the_route_is_said_so(admin_client, route):
    response = admin_client.post(reverse("admin:routes_route_try", args=[route.pk]), sample(path="/elsewhere"))
    assert "does not match this route" in " ".join(response.context["result"].notes)


def test_the_panel_is_for_staff_only(client, route):
    get_user_model().objects.create_user("bob", password=PASSWORD)
    assert client.login(username="bob", password=PASSWORD)
    response = client.get(reverse("admin:routes_route_try", args=[route.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]
