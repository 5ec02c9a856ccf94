"""Routes with protocol grpc: backends as on http (cleartext or TLS HTTP/2), POST only, and only the blocks a gRPC
call goes through."""
from __future__ import annotations

import pytest

from routes.snapshot import build_table
from routes.validation import GRPC_BLOCKS

pytestmark = pytest.mark.django_db
JWT = {"secret": "a-shared-secret-of-at-least-32-bytes!"}


def grpc_doc(**fields):
    return {"name": "greeter", "protocol": "grpc", "external_path": "/helloworld.Greeter/{method}",
            "backends": [{"host": "http://10.0.0.5", "port": 50051}, {"host": "https://10.0.0.6", "port": 50052}],
            **fields}


def test_a_grpc_route_is_saved_with_its_backends_and_methods_post(api):
    response = api.post("/api/routes/", grpc_doc(auth="either", jwt=JWT, rate_limit={"limit": 10, "window_s": 1}),
                        format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["methods"] == ["POST"]
    spec = build_table().routes[0].spec
    assert (spec.protocol, spec.methods, spec.auth) == ("grpc", ("POST",), "either")
    assert [b.url for b in spec.backends] == ["http://10.0.0.5:50051", "https://10.0.0.6:50052"]


def test_a_grpc_route_needs_backends(api):
    response = api.post("/api/routes/", grpc_doc(backends=[]), format="json")
    assert response.status_code == 400 and "backends" in response.json()["errors"]


def test_methods_other_than_post_are_refused(api):
    response = api.post("/api/routes/", grpc_doc(methods=["GET", "POST"]), format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["methods"] == ['Every gRPC call is a POST: leave methods out or send ["POST"].']


@pytest.mark.parametrize("block", ["request_transformation", "cache", "compression", "cors", "security_headers"])
def test_a_block_a_grpc_call_does_not_go_through_is_refused(api, block):
    sample = {"request_transformation": {"headers": [{"action": "set", "name": "X-Env", "value": "prod"}]},
              "cache": {"ttl_s": 30}, "compression": {"enabled": True}, "cors": {"origins": ["https://a.example"]},
              "security_headers": {"frame_options": "SAMEORIGIN"}}[block]
    response = api.post("/api/routes/", grpc_doc(**{block: sample}), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [block]
    assert response.json()["errors"][block][0].startswith(f"A grpc route does not use {block}")


@pytest.mark.parametrize("block", ["ai_policy", "plugins", "websocket", "ftp", "llm"])
def test_a_block_of_another_listener_is_refused_once(api, block):
    response = api.post("/api/routes/", grpc_doc(**{block: [] if block == "plugins" else {}}), format="json")
    assert response.status_code == 400
    assert "this route's protocol is grpc" in " ".join(response.json()["errors"][block])


def test_every_block_a_grpc_call_goes_through_is_accepted(api):
    samples = {"retry": {"max_retries": 2}, "circuit_breaker": {"failure_threshold": 3},
               "health_check": {"interval_s": 10}, "rate_limit": {"limit": 10, "window_s": 1}, "jwt": JWT,
               "tls": {"redirect_http": True}, "ip_rules": {"deny": ["10.0.0.13"]},
               "limits": {"max_body_bytes": 1024}}
    assert set(samples) == set(GRPC_BLOCKS)
    response = api.post("/api/routes/", grpc_doc(**samples), format="json")
    assert response.status_code == 201, response.json()


@pytest.mark.parametrize("path", ["/", "/my.pkg.Service", "/Health_1"])
def test_a_grpc_backends_health_check_path_names_a_service(api, path):
    doc = grpc_doc(backends=[{"host": "http://10.0.0.5", "port": 50051, "health_check_path": path}])
    assert api.post("/api/routes/", doc, format="json").status_code == 201


@pytest.mark.parametrize("path", ["/my.pkg.Service/Check", "/svc?x=1", "/-bad"])
def test_a_grpc_backends_health_check_path_that_is_not_a_service_name_is_refused(api, path):
    doc = grpc_doc(backends=[{"host": "http://10.0.0.5", "port": 50051, "health_check_path": path}])
    response = api.post("/api/routes/", doc, format="json")
    assert response.status_code == 400
    assert "backends[0].health_check_path" in str(response.json())
