"""A backend's `discovery` key in the control plane: refused by path when wrong, and round-tripping through the API,
the admin, export and import to the data plane's table."""
from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from protocols.table import DiscoverySpec
from routes import import_export, services
from routes.models import Backend, Route
from routes.snapshot import build_table
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db

SRV = {"type": "srv", "interval_s": 2, "resolver": "127.0.0.1:8600"}


def document(*backends: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "api", "external_path": "/api", "methods": ["GET"], "backends": list(backends), **fields}


def srv_backend(**fields: Any) -> dict[str, Any]:
    return {"host": "http://_http._tcp.api.internal", "port": 80, "discovery": SRV, **fields}


def errors_of(api: Any, doc: dict[str, Any]) -> dict[str, list[str]]:
    response = api.post("/api/routes/", doc, format="json")
    assert response.status_code == 400, response.json()
    return response.json()["errors"]


def discovery_in_table() -> list[DiscoverySpec | None]:
    return [backend.discovery for route in build_table().routes for backend in route.backends]


def test_discovery_round_trips_through_the_api_and_reaches_the_data_plane(api):
    response = api.post("/api/routes/", document(srv_backend()), format="json")
    assert response.status_code == 201, response.json()
    url = f"/api/routes/{response.json()['id']}/"
    shown = api.get(url).json()
    assert shown["backends"][0]["discovery"] == SRV
    assert api.put(url, shown, format="json").status_code == 200
    assert Backend.objects.get().discovery == SRV
    assert discovery_in_table() == [DiscoverySpec("srv", 2.0, ("127.0.0.1", 8600))]


def test_a_backend_without_discovery_shows_no_such_key(api):
    response = api.post("/api/routes/", document({"host": "http://10.0.0.5", "port": 80}), format="json")
    assert "discovery" not in response.json()["backends"][0]
    assert discovery_in_table() == [None]


def test_sending_null_removes_discovery(api):
    route = services.save_route(document(srv_backend()), actor=None, source="api")
    shown = api.get(f"/api/routes/{route.pk}/").json()
    shown["backends"][0]["discovery"] = None
    shown["backends"][0]["host"] = "http://api.internal"
    assert api.put(f"/api/routes/{route.pk}/", shown, format="json").status_code == 200
    assert Backend.objects.get().discovery is None and discovery_in_table() == [None]


def test_each_bad_key_is_refused_at_its_path(api):
    errors = errors_of(api, document(srv_backend(discovery={"type": "txt", "interval_s": 0, "resolver": "dns",
                                                            "ttl": 5})))
    assert {"backends[0].discovery.type", "backends[0].discovery.interval_s", "backends[0].discovery.resolver",
            "backends[0].discovery.ttl"} <= set(errors)
    assert errors["backends[0].discovery.ttl"] == ["Unknown key; discovery knows interval_s, resolver, type."]


def test_a_discovery_that_is_not_an_object_is_refused_by_its_type(api):
    errors = errors_of(api, document(srv_backend(discovery="srv")))
    assert errors == {"backends[0].discovery": ["Must be an object, not a string."]}


@pytest.mark.parametrize(("backend", "fields", "path", "says"), [
    ({"host": "wss://chat.internal", "port": 443, "discovery": {"type": "a"}}, {"protocol": "websocket"},
     "backends[0].discovery", "use ws"),
    ({"host": "http://10.0.0.5", "port": 80, "discovery": {"type": "a"}}, {}, "backends[0].host", "not an address"),
    (srv_backend(health_check_path="/health"), {}, "backends[0].health_check_path", "leave it null"),
    (srv_backend(), {"ai_policy": {"strategy": "latency_prediction"}}, "backends[0].discovery", "ai_policy"),
    ({"host": "_dns._udp.example.com", "port": 53, "discovery": {"type": "srv"}},
     {"protocol": "dns", "external_path": "", "methods": []}, "backends[0].discovery", "dns route"),
])
def test_what_discovery_cannot_go_with_is_refused(api, backend, fields, path, says):
    errors = errors_of(api, document(backend, **fields))
    assert says in " ".join(errors[path]), errors


def test_an_https_backend_may_discover_its_addresses(api):
    response = api.post("/api/routes/", document(
        {"host": "https://_https._tcp.api.internal", "port": 443, "discovery": SRV}), format="json")
    assert response.status_code == 201, response.json()
    assert [(b.scheme, b.discovery) for r in build_table().routes for b in r.backends] == [
        ("https", DiscoverySpec("srv", 2.0, ("127.0.0.1", 8600)))]


def test_discovery_round_trips_through_export_and_import(staff_user):
    services.save_route(document(srv_backend()), actor=staff_user, source="api")
    exported = import_export.export_config()
    assert exported["routers"][0]["backends"][0]["discovery"] == SRV
    report = import_export.import_config(exported, actor=staff_user, source="import", strict=True)
    assert report.unchanged == ["api"]
    Route.objects.all().delete()
    report = import_export.import_config(exported, actor=staff_user, source="import", strict=True)
    assert report.created == ["api"]
    assert Backend.objects.get().discovery == SRV


def admin_post(discovery: str, **extra: str) -> dict[str, Any]:
    return {
        "name": "api", "enabled": "on", "protocol": "http", "external_path": "/api", "methods": ["GET"],
        "match_host": "", "internal_path": "", "priority": "0", "load_balancing_strategy": "round_robin",
        "connect_timeout_ms": "5000", "read_timeout_ms": "30000", "total_timeout_ms": "0",
        "backends-TOTAL_FORMS": "1", "backends-INITIAL_FORMS": "0", "backends-MIN_NUM_FORMS": "0",
        "backends-MAX_NUM_FORMS": "1000", "backends-0-host": "http://_http._tcp.api.internal",
        "backends-0-port": "80", "backends-0-weight": "1", "backends-0-enabled": "on",
        "backends-0-discovery": discovery, **extra,
    }


def test_discovery_round_trips_through_the_admin(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(reverse("admin:routes_route_add"), admin_post(json.dumps(SRV)))
    assert response.status_code == 302, response.context["errors"] if response.context else response
    backend = Backend.objects.get()
    assert backend.discovery == SRV
    change = reverse("admin:routes_route_change", args=[backend.route_id])
    formset = client.get(change).context["inline_admin_formsets"][0].formset
    shown = formset.forms[0]["discovery"].value()
    assert json.loads(shown) == SRV
    data = admin_post(shown, **{"backends-INITIAL_FORMS": "1", "backends-0-id": str(backend.pk),
                                "backends-0-route": str(backend.route_id)})
    assert client.post(change, data).status_code == 302
    assert Backend.objects.get().discovery == SRV


def test_a_bad_key_shows_at_the_backend_rows_discovery_field_in_the_admin(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(reverse("admin:routes_route_add"), admin_post('{"type": "srv", "interval_s": 0}'))
    assert response.status_code == 200
    row = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert [message for message in row.errors["discovery"] if message.startswith("interval_s: ")]
    assert not Route.objects.exists()
