"""/api/schema/: the OpenAPI document generates cleanly and describes the route document."""
from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from drf_spectacular.drainage import reset_generator_stats

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(api) -> dict:
    response = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def test_the_schema_generates_valid_and_without_warnings():
    reset_generator_stats()
    # Raises when drf-spectacular warns or the document is not valid OpenAPI.
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=StringIO())


def test_the_schema_lists_every_management_endpoint(schema):
    assert set(schema["paths"]) == {
        "/api/routes/", "/api/routes/{id}/", "/api/routes/validate/", "/api/config/", "/api/config/status/",
        "/api/config/reload/", "/api/config/export/", "/api/config/import/", "/api/config/settings/",
        "/api/config/diff/", "/api/config/apply/",
        "/api/backends/{id}/health/", "/api/metrics/", "/api/metrics/history/", "/api/metrics/consumers/",
        "/api/cache/purge/", "/api/audit/",
        "/api/audit/{id}/", "/api/consumers/", "/api/consumers/{id}/", "/api/consumers/{id}/keys/",
        "/api/consumers/{id}/keys/{key_id}/", "/api/consumers/{id}/keys/{key_id}/rotate/", "/api/plugins/",
        "/api/certificates/", "/api/certificates/{id}/",
            "/api/metrics/llm/spend/", "/api/metrics/llm/spend/summary/",
        "/api/advice/", "/api/advice/{id}/apply/", "/api/advice/forecast/",
        "/api/routes/{id}/learned-openapi/", "/api/routes/{id}/learned-openapi/drift/",
        "/api/verdicts/", "/api/verdicts/{id}/", "/api/verdicts/{id}/lift/",
    }


def test_the_route_document_is_described_field_by_field(schema):
    route = schema["components"]["schemas"]["Route"]
    props = route["properties"]
    assert {"external_path", "internal_path", "methods", "backends", "load_balancing_strategy", "auth_required",
            "retry", "request_transformation", "response_transformation", "protocol", "id", "name", "enabled",
            "priority", "match_host", "connect_timeout_ms", "read_timeout_ms", "preserve_host", "rate_limit",
            "ai_policy", "health_check", "circuit_breaker", "total_timeout_ms", "cache", "compression", "jwt", "ftp",
            "websocket"} <= set(props)
    assert not {"external_path", "methods"} & set(route.get("required", []))  # dns routes take defaults
    assert props["id"]["readOnly"] is True
    assert props["host"]["writeOnly"] is True and props["port"]["writeOnly"] is True
    assert props["backends"]["items"]["$ref"] == "#/components/schemas/Backend"
    backend = schema["components"]["schemas"]["Backend"]["properties"]
    assert {"host", "port", "weight", "health_check_path"} <= set(backend)
    assert backend["id"]["readOnly"] is True


def test_a_route_is_addressed_by_id_or_name(schema):
    parameter = schema["paths"]["/api/routes/{id}/"]["get"]["parameters"][0]
    assert (parameter["name"], parameter["schema"]["type"]) == ("id", "string")


def test_the_import_documents_its_replace_and_dry_run_flags_and_error_answer(schema):
    operation = schema["paths"]["/api/config/import/"]["post"]
    assert [p["name"] for p in operation["parameters"]] == ["dry_run", "replace"]
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Errors")


def test_the_resilience_blocks_are_described_key_by_key_with_their_defaults(schema):
    schemas = schema["components"]["schemas"]
    health = schemas["HealthCheck"]["properties"]
    assert {"interval_s", "timeout_ms", "healthy_threshold", "unhealthy_threshold", "healthy_statuses"} == set(health)
    assert (health["interval_s"]["default"], health["timeout_ms"]["default"]) == (5, 2000)
    breaker = schemas["CircuitBreaker"]["properties"]
    assert breaker["failure_statuses"]["default"] == [502, 503, 504]
    assert {"enabled", "failure_threshold", "failure_ratio", "window_s", "min_requests", "open_s",
            "half_open_requests", "success_threshold"} <= set(breaker)
    retry = schemas["RetryPolicy"]["properties"]
    assert {"retry_non_idempotent", "budget_ratio", "budget_window_s", "budget_min_per_s"} <= set(retry)
    assert "latency_aware" in schemas["LoadBalancingStrategyEnum"]["enum"]


def test_the_ftp_and_websocket_blocks_are_described_key_by_key(schema):
    schemas = schema["components"]["schemas"]
    ftp = schemas["FtpPolicy"]["properties"]
    assert set(ftp) == {"username", "password", "passthrough_basic_auth", "root"}
    assert "Write-only" in ftp["password"]["description"]
    websocket = schemas["WebSocketPolicy"]["properties"]
    assert (websocket["max_message_bytes"]["default"], websocket["idle_timeout_s"]["default"]) == (1048576, 300)


def test_the_backend_health_endpoint_documents_the_override(schema):
    operation = schema["paths"]["/api/backends/{id}/health/"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][body]["properties"]) == {"override"}
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/Errors")
