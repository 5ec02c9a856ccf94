"""The guard blocks through the control plane: validation, the route document, import/export, admin, snapshot."""
from __future__ import annotations

import pytest

from routes import import_export, services, snapshot
from routes.models import GatewaySettings

pytestmark = pytest.mark.django_db

GUARDS = {
    "cors": {"origins": ["https://app.example.com"], "credentials": True},
    "limits": {"max_body_bytes": 1024},
    "ip_rules": {"allow": ["10.0.0.0/8"]},
    "security_headers": {"frame_options": "SAMEORIGIN"},
}


def test_a_route_keeps_its_guard_blocks_in_its_document(route_doc):
    route = services.save_route(route_doc(**GUARDS), actor=None, source="api")
    document = services.route_document(route)
    assert {key: document[key] for key in GUARDS} == GUARDS


def test_a_new_route_has_no_guard_blocks_of_its_own(route_doc):
    document = services.route_document(services.save_route(route_doc(), actor=None, source="api"))
    assert [document[key] for key in GUARDS] == [None, None, None, None]


@pytest.mark.parametrize(("block", "path"), [
    ({"cors": {"origins": ["*"], "credentials": True}}, "cors.origins"),
    ({"cors": {"origins": ["https://a.test/"]}}, "cors.origins[0]"),
    ({"limits": {"max_body_bytes": -5}}, "limits.max_body_bytes"),
    ({"ip_rules": {"allow": ["10.0.0.300"]}}, "ip_rules.allow[0]"),
    ({"ip_rules": {"alow": ["10.0.0.0/8"]}}, "ip_rules.alow"),
    ({"security_headers": {"frame_options": "ALLOWALL"}}, "security_headers.frame_options"),
    ({"security_headers": "on"}, "security_headers"),
])
def test_a_bad_guard_block_is_refused_by_path(route_doc, block, path):
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(**block), actor=None, source="api")
    assert path in caught.value.errors


def test_the_table_gets_the_guard_blocks_as_policies(route_doc):
    services.save_route(route_doc(**GUARDS), actor=None, source="api")
    spec = snapshot.build_table().routes[0].spec
    assert {key: spec.policies[key] for key in GUARDS} == GUARDS


def test_gateway_wide_guard_blocks_import_export_and_reach_the_data_plane(route_doc):
    import_export.import_config({"cors": {"origins": ["*"]}, "ip_rules": {"deny": ["192.0.2.0/24"]},
                            "routers": [route_doc()]}, actor=None, source="import")
    assert import_export.export_config()["ip_rules"] == {"deny": ["192.0.2.0/24"]}
    settings = snapshot.build_table().settings
    assert (settings["cors"], settings["ip_rules"]) == ({"origins": ["*"]}, {"deny": ["192.0.2.0/24"]})


def test_a_bad_gateway_wide_guard_block_is_refused_and_nothing_changes(route_doc):
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config({"limits": {"max_url_length": "long"}, "routers": [route_doc()]}, actor=None,
                               source="import")
    assert "limits.max_url_length" in caught.value.errors
    assert not GatewaySettings.objects.exists()


def test_the_admin_form_saves_the_guard_blocks(admin_client, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    page = admin_client.get(f"/admin/routes/route/{route.pk}/change/")
    assert b'name="cors"' in page.content
    form = {
        "name": "users", "enabled": "on", "protocol": "http", "external_path": "/users/{id}",
        "internal_path": "/v1/users/{id}", "methods": ["GET"], "match_host": "", "priority": "0",
        "load_balancing_strategy": "round_robin", "connect_timeout_ms": "5000", "read_timeout_ms": "30000",
        "total_timeout_ms": "0", "cors": '{"origins": ["https://app.example.com"]}', "limits": "",
        "ip_rules": '{"deny": ["192.0.2.1"]}', "security_headers": "",
        "backends-TOTAL_FORMS": "1", "backends-INITIAL_FORMS": "1", "backends-MIN_NUM_FORMS": "0",
        "backends-MAX_NUM_FORMS": "1000",
        "backends-0-id": str(route.backends.first().pk), "backends-0-route": str(route.pk),
        "backends-0-host": "http://10.0.0.5", "backends-0-port": "8080", "backends-0-weight": "1",
        "backends-0-enabled": "on",
    }
    response = admin_client.post(f"/admin/routes/route/{route.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    route.refresh_from_db()
    assert (route.cors, route.ip_rules) == ({"origins": ["https://app.example.com"]}, {"deny": ["192.0.2.1"]})


def test_the_admin_form_shows_a_guard_error_on_its_field(admin_client, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    form = {
        "name": "users", "enabled": "on", "protocol": "http", "external_path": "/users/{id}",
        "internal_path": "/v1/users/{id}", "methods": ["GET"], "priority": "0",
        "load_balancing_strategy": "round_robin", "connect_timeout_ms": "5000", "read_timeout_ms": "30000",
        "cors": '{"origins": ["null"]}',
        "backends-TOTAL_FORMS": "1", "backends-INITIAL_FORMS": "1", "backends-MIN_NUM_FORMS": "0",
        "backends-MAX_NUM_FORMS": "1000",
        "backends-0-id": str(route.backends.first().pk), "backends-0-route": str(route.pk),
        "backends-0-host": "http://10.0.0.5", "backends-0-port": "8080", "backends-0-enabled": "on",
    }
    response = admin_client.post(f"/admin/routes/route/{route.pk}/change/", form)
    assert response.status_code == 200
    assert "origins[0]: &quot;null&quot; cannot be allowed" in response.content.decode()
