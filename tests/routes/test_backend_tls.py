"""A backend's `tls` options (its CA bundle, the name to verify, verification): refused by path when wrong, only on
https and wss backends, and round-tripping through the API, the admin, export and import to the data plane."""
from __future__ import annotations

import json
from typing import Any

import pytest
import trustme
from django.urls import reverse

from routes import import_export, services
from routes.models import Backend, Route
from routes.snapshot import build_table
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
CA_PEM = trustme.CA().cert_pem.bytes().decode()
TLS = {"ca": CA_PEM, "server_name": "api.internal", "verify": True}


def document(*backends: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "api", "external_path": "/api", "methods": ["GET"], "backends": list(backends), **fields}


def https(**fields: Any) -> dict[str, Any]:
    return {"host": "https://10.0.0.5", "port": 8443, **fields}


def errors_of(api: Any, doc: dict[str, Any]) -> dict[str, list[str]]:
    response = api.post("/api/routes/", doc, format="json")
    assert response.status_code == 400, response.json()
    return response.json()["errors"]


def test_tls_options_round_trip_through_the_api_and_reach_the_data_plane(api):
    response = api.post("/api/routes/", document(https(tls=TLS), {"host": "http://10.0.0.6", "port": 80}),
                        format="json")
    assert response.status_code == 201, response.json()
    shown = api.get(f"/api/routes/{response.json()['id']}/").json()["backends"]
    assert shown[0]["tls"] == TLS and "tls" not in shown[1]  # shown only when set, the CA as stored
    first, second = build_table().routes[0].spec.backends
    assert (first.tls_ca, first.tls_server_name, first.tls_verify) == (CA_PEM, "api.internal", True)
    assert (second.tls_ca, second.tls_server_name, second.tls_verify) == ("", "", True)


def test_verification_can_be_switched_off(api):
    assert api.post("/api/routes/", document(https(tls={"verify": False})), format="json").status_code == 201
    assert build_table().routes[0].spec.backends[0].tls_verify is False


def test_a_misspelt_key_is_refused_by_its_path(api):
    errors = errors_of(api, document(https(tls={"verfy": False})))
    assert list(errors) == ["backends[0].tls.verfy"] and "Did you mean 'verify'?" in errors["backends[0].tls.verfy"][0]


def test_bad_values_are_refused_each_by_its_path(api):
    errors = errors_of(api, document(https(tls={"ca": "not pem", "server_name": "10.0.0.5", "verify": "yes"})))
    assert set(errors) == {"backends[0].tls.ca", "backends[0].tls.server_name", "backends[0].tls.verify"}


def test_tls_options_on_a_plain_http_backend_are_refused(api):
    errors = errors_of(api, document({"host": "http://10.0.0.5", "port": 80, "tls": {"verify": False}}))
    assert errors["backends[0].tls"][0].startswith("TLS options apply to https and wss backends; this one is http")


def test_tls_options_round_trip_through_export_and_import(staff_user):
    services.save_route(document(https(tls=TLS)), actor=staff_user, source="api")
    exported = import_export.export_config()
    assert exported["routers"][0]["backends"][0]["tls"] == TLS
    assert import_export.import_config(exported, actor=staff_user, source="import", strict=True).unchanged == ["api"]
    Route.objects.all().delete()
    assert import_export.import_config(exported, actor=staff_user, source="import", strict=True).created == ["api"]
    assert Backend.objects.get().tls == TLS


def admin_post(tls: str, **extra: str) -> dict[str, Any]:
    return {
        "name": "api", "enabled": "on", "protocol": "http", "external_path": "/api", "methods": ["GET"],
        "match_host": "", "internal_path": "", "priority": "0", "load_balancing_strategy": "round_robin",
        "connect_timeout_ms": "5000", "read_timeout_ms": "30000", "total_timeout_ms": "0",
        "backends-TOTAL_FORMS": "1", "backends-INITIAL_FORMS": "0", "backends-MIN_NUM_FORMS": "0",
        "backends-MAX_NUM_FORMS": "1000", "backends-0-host": "https://10.0.0.5", "backends-0-port": "8443",
        "backends-0-weight": "1", "backends-0-enabled": "on", "backends-0-tls": tls, **extra,
    }


def test_tls_options_round_trip_through_the_admin(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(reverse("admin:routes_route_add"), admin_post(json.dumps(TLS)))
    assert response.status_code == 302, response.context["errors"] if response.context else response
    backend = Backend.objects.get()
    change = reverse("admin:routes_route_change", args=[backend.route_id])
    shown = client.get(change).context["inline_admin_formsets"][0].formset.forms[0]["tls"].value()
    assert json.loads(shown) == TLS
    data = admin_post(shown, **{"backends-INITIAL_FORMS": "1", "backends-0-id": str(backend.pk),
                                "backends-0-route": str(backend.route_id)})
    assert client.post(change, data).status_code == 302
    assert Backend.objects.get().tls == TLS


def test_a_bad_key_shows_at_the_backend_rows_tls_field_in_the_admin(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(reverse("admin:routes_route_add"), admin_post('{"verfy": false}'))
    assert response.status_code == 200
    row = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert [message for message in row.errors["tls"] if message.startswith("verfy: Unknown key")]
