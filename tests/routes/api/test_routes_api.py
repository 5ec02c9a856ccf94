"""/api/routes/: list, create, read, replace, change, delete and dry-run route documents."""
from __future__ import annotations

import pytest

from routes import services
from routes.models import AuditEntry, Route
from routes.secrets import REDACTED
from tests.support.compat import kairos_examples, load

pytestmark = pytest.mark.django_db

# The earlier gateway's legacy router, copied from its config.json as is.
LEGACY_ROUTER = {
    "_comment": "Legacy single backend configuration (backward compatible)",
    "host": "http://httpbin.org",
    "port": 80,
    "external_path": "/api/legacy/get",
    "internal_path": "/get",
    "methods": ["GET"],
    "auth_required": False,
}


def test_a_legacy_router_with_a_comment_posts_as_is(api):
    response = api.post("/api/routes/", LEGACY_ROUTER, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "api-legacy-get"
    assert body["backends"] == [{"id": Route.objects.get().backends.get().pk, "host": "http://httpbin.org", "port": 80,
                                 "weight": 1, "health_check_path": None, "enabled": True, "description": ""}]
    assert Route.objects.get().external_path == "/api/legacy/get"


@pytest.mark.parametrize("path", kairos_examples())
def test_every_router_of_the_earlier_gateways_examples_posts_as_is(api, path):
    for router in load(path)["routers"]:
        response = api.post("/api/routes/", router, format="json")
        assert response.status_code == 201, (router, response.json())


def test_creating_a_route_answers_its_document(api, route_doc):
    response = api.post("/api/routes/", route_doc(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == Route.objects.get().pk
    assert [b["host"] for b in body["backends"]] == ["http://10.0.0.5", "http://10.0.0.6"]
    assert body["load_balancing_strategy"] == "round_robin"


def test_an_invalid_route_answers_errors_by_field_and_saves_nothing(api, route_doc):
    doc = route_doc(external_path="/users/{id", backends=[{"host": "http://ok", "port": 0}])
    response = api.post("/api/routes/", doc, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"external_path", "backends[0].port"}
    assert errors["backends[0].port"] == ["Must be a whole number from 1 to 65535."]
    assert not Route.objects.exists()


def test_malformed_json_is_a_bad_request(api):
    response = api.post("/api/routes/", '{"external_path": ', content_type="application/json")
    assert response.status_code == 400


def test_a_json_list_instead_of_a_route_is_a_bad_request(api):
    response = api.post("/api/routes/", [1, 2], format="json")
    assert response.status_code == 400
    assert "JSON object" in response.json()["errors"][""][0]


def test_a_clashing_route_is_refused_with_the_route_it_clashes_with(api, route_doc):
    api.post("/api/routes/", route_doc(), format="json")
    response = api.post("/api/routes/", route_doc(name="again", external_path="/users/{uid}"), format="json")
    assert response.status_code == 400
    assert "'users'" in response.json()["errors"]["external_path"][0]


def test_the_list_is_paginated_in_creation_order(api, route_doc):
    for name in ("b", "a"):
        api.post("/api/routes/", route_doc(name=name, external_path=f"/{name}"), format="json")
    body = api.get("/api/routes/").json()
    assert body["count"] == 2
    assert [r["name"] for r in body["results"]] == ["b", "a"]


def test_a_route_can_be_read_by_id_or_by_name(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(name="api.v1", external_path="/v1"), format="json").json()["id"]
    assert api.get(f"/api/routes/{route_id}/").json()["name"] == "api.v1"
    assert api.get("/api/routes/api.v1/").json()["id"] == route_id


def test_an_unknown_route_is_not_found(api):
    assert api.get("/api/routes/404/").status_code == 404
    assert api.get("/api/routes/nothing/").status_code == 404
    assert api.get("/api/routes/99999999999999999999999999/").status_code == 404


def test_put_replaces_the_whole_document(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(priority=9), format="json").json()["id"]
    response = api.put(f"/api/routes/{route_id}/", route_doc(methods=["GET"]), format="json")
    assert response.status_code == 200, response.json()
    assert (response.json()["priority"], response.json()["methods"]) == (0, ["GET"])


def test_patch_changes_only_the_fields_sent(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    response = api.patch(f"/api/routes/{route_id}/", {"enabled": False}, format="json")
    assert response.status_code == 200
    assert response.json()["enabled"] is False
    assert len(response.json()["backends"]) == 2


def test_an_invalid_patch_changes_nothing(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    response = api.patch(f"/api/routes/{route_id}/", {"methods": []}, format="json")
    assert response.status_code == 400
    assert "methods" in response.json()["errors"]
    assert Route.objects.get().methods == ["GET", "PUT"]


def test_delete_removes_the_route_and_audits_who_did_it(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    assert api.delete(f"/api/routes/{route_id}/").status_code == 204
    assert not Route.objects.exists()
    entry = AuditEntry.objects.get(action="delete")
    assert (entry.actor_name, entry.source) == ("alice", "api")


def test_secrets_read_back_redacted_and_survive_a_put_of_what_was_read(api, route_doc):
    doc = route_doc(ai_policy={"enabled": True, "strategy": "content_analysis", "api_key": "sk-live"})
    body = api.post("/api/routes/", doc, format="json").json()
    assert body["ai_policy"]["api_key"] == REDACTED
    body["priority"] = 4
    assert api.put(f"/api/routes/{body['id']}/", body, format="json").status_code == 200
    assert Route.objects.get().ai_policy["api_key"] == "sk-live"


def test_the_dry_run_answers_the_normalized_document_and_saves_nothing(api):
    response = api.post("/api/routes/validate/", LEGACY_ROUTER, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert body["route"]["backends"][0]["host"] == "http://httpbin.org"
    assert body["route"]["methods"] == ["GET"]
    assert not Route.objects.exists()
    assert services.config_version().version == 0


def test_the_dry_run_warns_about_a_backend_name_that_does_not_resolve_and_stays_valid(api, route_doc):
    backends = [{"host": "http://10.0.0.5", "port": 8080}, {"host": "http://nothing.invalid", "port": 8080}]
    response = api.post("/api/routes/validate/", route_doc(backends=backends), format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["valid"] is True
    assert list(body["warnings"]) == ["backends[1].host"]
    assert body["warnings"]["backends[1].host"][0].startswith("nothing.invalid does not resolve from this gateway (")


def test_the_dry_run_has_no_warnings_for_backends_at_addresses(api, route_doc):
    assert api.post("/api/routes/validate/", route_doc(), format="json").json()["warnings"] == {}


def test_the_dry_run_answers_errors_for_an_invalid_document(api, route_doc):
    response = api.post("/api/routes/validate/", route_doc(protocol="smtp"), format="json")
    assert response.status_code == 400
    assert response.json()["valid"] is False
    assert "protocol" in response.json()["errors"]


def test_the_dry_run_lists_keys_it_would_ignore(api, route_doc):
    response = api.post("/api/routes/validate/", route_doc(strip_path=True), format="json")
    assert response.json()["unknown_keys"] == ["strip_path"]


def test_the_dry_run_of_a_stored_route_does_not_clash_with_itself(api, route_doc):
    body = api.post("/api/routes/", route_doc(), format="json").json()
    body["read_timeout_ms"] = 100
    assert api.post("/api/routes/validate/", body, format="json").json()["valid"] is True


RESILIENCE = {
    "load_balancing_strategy": "latency_aware",
    "total_timeout_ms": 3000,
    "retry": {"max_retries": 2, "retry_non_idempotent": True, "budget_ratio": 0.1, "budget_window_s": 30,
              "budget_min_per_s": 2},
    "health_check": {"interval_s": 2, "timeout_ms": 500, "healthy_threshold": 1, "unhealthy_threshold": 2,
                     "healthy_statuses": [200]},
    "circuit_breaker": {"enabled": True, "failure_threshold": 3, "failure_ratio": 0.5, "window_s": 20,
                        "min_requests": 10, "open_s": 5, "half_open_requests": 1, "success_threshold": 2,
                        "failure_statuses": [502, 503]},
}


def test_the_resilience_fields_are_stored_and_read_back_as_sent(api, route_doc):
    response = api.post("/api/routes/", route_doc(**RESILIENCE), format="json")
    assert response.status_code == 201, response.json()
    body = api.get(f"/api/routes/{response.json()['id']}/").json()
    assert {key: body[key] for key in RESILIENCE} == RESILIENCE


def test_a_route_without_them_reads_back_with_their_defaults(api, route_doc):
    body = api.post("/api/routes/", route_doc(), format="json").json()
    assert (body["health_check"], body["circuit_breaker"], body["total_timeout_ms"]) == (None, None, 0)


def test_invalid_resilience_blocks_answer_every_error_by_path(api, route_doc):
    response = api.post("/api/routes/", route_doc(health_check={"interval_s": 0, "timeout_ms": 10},
                                                  circuit_breaker={"failure_ratio": 2},
                                                  retry={"budget_window_s": 0}, total_timeout_ms=-5), format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {
        "health_check.interval_s", "health_check.timeout_ms", "circuit_breaker.failure_ratio",
        "retry.budget_window_s", "total_timeout_ms",
    }
    assert not Route.objects.exists()


def test_patching_a_route_keeps_its_backend_ids(api, route_doc):
    created = api.post("/api/routes/", route_doc(), format="json").json()
    ids = list(Route.objects.get().backends.values_list("id", flat=True))
    api.patch(f"/api/routes/{created['id']}/", {"health_check": {"interval_s": 1}}, format="json")
    assert list(Route.objects.get().backends.values_list("id", flat=True)) == ids


def test_each_backend_reads_back_with_the_id_its_health_endpoint_takes(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    backend_id = api.get(f"/api/routes/{route_id}/").json()["backends"][0]["id"]
    response = api.post(f"/api/backends/{backend_id}/health/", {"override": "down"}, format="json")
    assert response.status_code == 200, response.json()
    assert Route.objects.get().backends.get(pk=backend_id).host == "10.0.0.5"


def test_putting_back_the_document_read_keeps_its_backends(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    read = api.get(f"/api/routes/{route_id}/").json()
    response = api.put(f"/api/routes/{route_id}/", read, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["backends"] == read["backends"]


def test_a_backend_id_sent_back_does_not_choose_the_backend(api, route_doc):
    route_id = api.post("/api/routes/", route_doc(), format="json").json()["id"]
    read = api.get(f"/api/routes/{route_id}/").json()
    first, second = read["backends"]
    read["backends"] = [{**first, "id": second["id"]}]
    body = api.put(f"/api/routes/{route_id}/", read, format="json").json()
    assert [(b["id"], b["host"]) for b in body["backends"]] == [(first["id"], first["host"])]


def test_dns_routes_need_no_http_path_or_methods(api):
    for name, resolver in (("google", "8.8.8.8"), ("quad9", "9.9.9.9")):
        response = api.post("/api/routes/", {"name": name, "protocol": "dns", "backends": [{"host": resolver}]},
                            format="json")
        assert response.status_code == 201, response.json()
        assert (response.json()["external_path"], response.json()["methods"]) == ("/dns-query", ["GET", "POST"])
