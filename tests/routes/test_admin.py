"""The Django admin as a user drives it: routes with backends, field errors, bulk actions, the audit trail."""
from __future__ import annotations

import pytest
from django.contrib import messages
from django.urls import reverse

from routes import import_export, services
from routes.health.models import BackendHealth
from routes.models import AuditEntry, Route
from routes.secrets import REDACTED
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
ADD_URL = reverse("admin:routes_route_add")
LIST_URL = reverse("admin:routes_route_changelist")


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def route_form(backends: list[dict], initial: int = 0, **fields) -> dict:
    """The POST body of the route add/change form with its backend rows."""
    data = {
        "name": "orders", "enabled": "on", "protocol": "http", "external_path": "/orders/{id}",
        "methods": ["GET", "POST"], "match_host": "", "internal_path": "/v2/orders/{id}", "priority": "0",
        "load_balancing_strategy": "weighted", "connect_timeout_ms": "5000", "read_timeout_ms": "30000",
        "retry": "", "request_transformation": "", "response_transformation": "", "rate_limit": "",
        "ai_policy": "",
        "backends-TOTAL_FORMS": str(len(backends)), "backends-INITIAL_FORMS": str(initial),
        "backends-MIN_NUM_FORMS": "0", "backends-MAX_NUM_FORMS": "1000",
    }
    data.update(fields)
    for index, backend in enumerate(backends):
        row = {"weight": "1", "health_check_path": "", "enabled": "on", **backend}
        data.update({f"backends-{index}-{key}": value for key, value in row.items() if value is not None})
    return data


TWO_BACKENDS = [{"host": "http://10.0.0.5", "port": "8080", "weight": "3"},
                {"host": "https://orders.internal", "port": "", "health_check_path": "/health"}]


def test_the_add_form_shows_methods_as_checkboxes(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    assert 'type="checkbox" name="methods" value="PATCH"' in page
    assert "backends-0-host" in page


def test_a_route_with_two_backends_is_created_from_the_add_form(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS))
    assert response.status_code == 302, response.context["errors"] if response.context else response
    route = Route.objects.get(name="orders")
    assert route.methods == ["GET", "POST"]
    assert [(b.url, b.weight, b.health_check_path) for b in route.backends.all()] == [
        ("http://10.0.0.5:8080", 3, None), ("https://orders.internal:443", 1, "/health"),
    ]
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.source, entry.action) == ("alice", "admin", "create")
    assert services.config_version().version == 1


def test_a_route_whose_backend_name_does_not_resolve_is_saved_with_a_warning(admin_client):
    backends = [{"host": "http://10.0.0.5", "port": "8080"}, {"host": "http://nothing.invalid", "port": "8080"}]
    response = admin_client.post(ADD_URL, route_form(backends), follow=True)
    assert Route.objects.get(name="orders").backends.count() == 2
    warnings = [str(m) for m in response.context["messages"] if m.level == messages.WARNING]
    assert len(warnings) == 1
    assert warnings[0].startswith("nothing.invalid does not resolve from this gateway (")
    assert "upstream_name_not_resolved" in warnings[0]


def test_a_route_whose_backends_are_addresses_is_saved_without_a_warning(admin_client):
    backends = [{"host": "http://10.0.0.5", "port": "8080"}, {"host": "http://[2001:db8::1]", "port": "8080"}]
    response = admin_client.post(ADD_URL, route_form(backends), follow=True)
    assert Route.objects.filter(name="orders").exists()
    assert not [m for m in response.context["messages"] if m.level == messages.WARNING]


def test_a_bad_pattern_is_shown_on_the_path_field_and_nothing_is_saved(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, external_path="/orders/{id"))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "parameter" in errors["external_path"][0] or "braces" in errors["external_path"][0]
    assert not Route.objects.exists()
    assert not AuditEntry.objects.exists()


def test_a_bad_backend_is_shown_on_its_row(admin_client):
    backends = [TWO_BACKENDS[0], {"host": "http://orders.internal/v1", "port": "80"}]
    response = admin_client.post(ADD_URL, route_form(backends))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].errors == {}
    assert "not a host name" in formset.forms[1].errors["host"][0]
    assert not Route.objects.exists()


def test_a_route_without_backends_is_refused(admin_client):
    response = admin_client.post(ADD_URL, route_form([]))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert "at least one backend" in formset.non_form_errors()[0]
    assert not Route.objects.exists()


def test_invalid_json_in_a_policy_is_a_field_error(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, retry="{max_retries: 3"))
    assert "retry" in response.context["adminform"].form.errors
    assert not Route.objects.exists()


def test_a_nested_policy_error_names_the_key(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, retry='{"max_retries": 99}'))
    assert response.context["adminform"].form.errors["retry"][0].startswith("max_retries: ")


def test_changing_a_route_removes_a_deleted_backend_row(admin_client):
    admin_client.post(ADD_URL, route_form(TWO_BACKENDS))
    route = Route.objects.get()
    ids = list(route.backends.values_list("id", flat=True))
    rows = [{**TWO_BACKENDS[0], "id": str(ids[0]), "route": str(route.pk)},
            {**TWO_BACKENDS[1], "id": str(ids[1]), "route": str(route.pk), "DELETE": "on"}]
    url = reverse("admin:routes_route_change", args=[route.pk])
    response = admin_client.post(url, route_form(rows, initial=2, read_timeout_ms="1000"))
    assert response.status_code == 302
    route.refresh_from_db()
    assert (route.read_timeout_ms, route.backends.count()) == (1000, 1)
    entry = AuditEntry.objects.get(action="update")
    assert set(entry.changes) == {"backends", "read_timeout_ms"}


def test_a_stored_secret_is_shown_redacted_and_kept_on_save(admin_client, route_doc):
    policy = {"enabled": True, "strategy": "content_analysis", "api_key": "sk-live"}
    route = services.save_route(route_doc(ai_policy=policy), actor=None, source="api")
    url = reverse("admin:routes_route_change", args=[route.pk])
    page = admin_client.get(url).content.decode()
    assert "sk-live" not in page and REDACTED.replace("<", "&lt;").replace(">", "&gt;") in page
    form = admin_client.get(url).context["adminform"].form
    data = route_form([], external_path=route.external_path, internal_path=route.internal_path, name=route.name,
                      methods=route.methods, ai_policy=form["ai_policy"].value(),
                      load_balancing_strategy="round_robin")
    rows = [{"id": str(b.pk), "route": str(route.pk), "host": f"http://{b.host}", "port": str(b.port),
             "weight": str(b.weight)} for b in route.backends.all()]
    data.update({k: v for k, v in route_form(rows, initial=len(rows)).items() if k.startswith("backends-")})
    assert admin_client.post(url, data).status_code == 302
    route.refresh_from_db()
    assert route.ai_policy["api_key"] == "sk-live"


def test_a_routes_own_jwt_secret_is_shown_redacted_and_kept_on_save(admin_client, route_doc):
    secret = "route-jwt-secret-for-the-admin-test-0123456"
    route = services.save_route(route_doc(jwt={"secret": secret, "issuer": "me"}), actor=None, source="api")
    url = reverse("admin:routes_route_change", args=[route.pk])
    page = admin_client.get(url).content.decode()
    assert secret not in page and 'name="jwt"' in page
    form = admin_client.get(url).context["adminform"].form
    data = route_form([], external_path=route.external_path, internal_path=route.internal_path, name=route.name,
                      methods=route.methods, jwt=form["jwt"].value(), priority="3",
                      load_balancing_strategy="round_robin")
    rows = [{"id": str(b.pk), "route": str(route.pk), "host": f"http://{b.host}", "port": str(b.port),
             "weight": str(b.weight)} for b in route.backends.all()]
    data.update({k: v for k, v in route_form(rows, initial=len(rows)).items() if k.startswith("backends-")})
    assert admin_client.post(url, data).status_code == 302
    route.refresh_from_db()
    assert (route.priority, route.jwt) == (3, {"secret": secret, "issuer": "me"})


def test_the_form_has_the_ftp_and_websocket_blocks(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    assert 'name="ftp"' in page and 'name="websocket"' in page


def test_a_rate_limit_that_does_not_compile_is_shown_on_its_field_with_the_key(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, rate_limit='{"limit": 5, "window_type": "x"}'))
    errors = response.context["adminform"].form.errors
    assert errors["rate_limit"] == ["window_type: Must be fixed_window, sliding_window or token_bucket."]
    assert not Route.objects.exists()


def test_an_ftp_block_on_an_http_route_is_shown_on_its_field(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, ftp='{"username": "reports"}'))
    assert "ftp" in response.context["adminform"].form.errors
    assert not Route.objects.exists()


def test_the_list_shows_methods_backends_and_finds_by_backend_host(admin_client, route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    services.save_route(route_doc(name="other", external_path="/other",
                                  backends=[{"host": "http://elsewhere", "port": 80}]), actor=None, source="api")
    page = admin_client.get(LIST_URL, {"q": "10.0.0.6"}).content.decode()
    assert "GET, PUT" in page and "http://10.0.0.5:8080" in page
    assert "/users/{id}" in page and "/other" not in page


def test_the_disable_and_enable_actions_go_through_the_service(admin_client, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    admin_client.post(LIST_URL, {"action": "disable_routes", "_selected_action": [route.pk]})
    route.refresh_from_db()
    assert route.enabled is False
    admin_client.post(LIST_URL, {"action": "enable_routes", "_selected_action": [route.pk]})
    route.refresh_from_db()
    assert route.enabled is True
    assert AuditEntry.objects.filter(source="admin", action="update", actor_name="alice").count() == 2


def test_enabling_a_clashing_route_is_reported_and_the_others_are_enabled(admin_client, route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    twin = services.save_route(route_doc(name="twin", enabled=False), actor=None, source="api")
    other = services.save_route(route_doc(name="other", external_path="/other", enabled=False), actor=None,
                                source="api")
    response = admin_client.post(LIST_URL, {"action": "enable_routes", "_selected_action": [twin.pk, other.pk]},
                                 follow=True)
    shown = [str(m) for m in response.context["messages"]]
    assert any("“twin” was not enabled" in m and "'users'" in m for m in shown)
    assert Route.objects.get(name="other").enabled is True
    assert Route.objects.get(name="twin").enabled is False


def test_the_bulk_delete_action_deletes_through_the_service(admin_client, route_doc):
    one = services.save_route(route_doc(), actor=None, source="api")
    two = services.save_route(route_doc(name="two", external_path="/two"), actor=None, source="api")
    admin_client.post(LIST_URL, {"action": "delete_selected", "_selected_action": [one.pk, two.pk], "post": "yes"})
    assert not Route.objects.exists()
    assert AuditEntry.objects.filter(action="delete", source="admin").count() == 2


def test_deleting_one_route_is_audited(admin_client, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    admin_client.post(reverse("admin:routes_route_delete", args=[route.pk]), {"post": "yes"})
    assert not Route.objects.exists()
    assert AuditEntry.objects.filter(action="delete", source="admin", actor_name="alice").exists()


def test_the_audit_trail_shows_the_change_readably(admin_client, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    services.save_route({"read_timeout_ms": 1234}, actor=None, source="api", route=route, partial=True)
    entry = AuditEntry.objects.get(action="update")
    assert "users" in admin_client.get(reverse("admin:routes_auditentry_changelist")).content.decode()
    page = admin_client.get(reverse("admin:routes_auditentry_change", args=[entry.pk])).content.decode()
    assert "<th>read_timeout_ms</th>" in page and "30000" in page and "1234" in page


def test_nobody_adds_changes_or_deletes_audit_entries(admin_client, route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    entry = AuditEntry.objects.get()
    assert admin_client.get(reverse("admin:routes_auditentry_add")).status_code == 403
    assert admin_client.post(reverse("admin:routes_auditentry_change", args=[entry.pk]),
                             {"actor_name": "mallory"}).status_code == 403
    assert admin_client.post(reverse("admin:routes_auditentry_delete", args=[entry.pk]),
                             {"post": "yes"}).status_code == 403
    entry.refresh_from_db()
    assert entry.actor_name == "system"


def test_the_audit_list_filters_by_source(admin_client, route_doc):
    services.save_route(route_doc(), actor=None, source="api")
    services.request_reload(actor=None, source="command")
    response = admin_client.get(reverse("admin:routes_auditentry_changelist"), {"source": "command"})
    assert [entry.action for entry in response.context["cl"].result_list] == ["reload"]


def test_gateway_settings_are_shown_with_secrets_redacted(admin_client, route_doc):
    import_export.import_config({"jwt": {"secret": "jwt-secret-value-0123456789abcdef", "issuer": "me"}, "routers": []},
                           actor=None, source="import")
    url = reverse("admin:routes_gatewaysettings_change", args=[services.gateway_settings().pk])
    page = admin_client.get(url).content.decode()
    assert "jwt-secret-value" not in page and "issuer" in page


# --- Resilience fields and backend health on the route page ----------------------------------------------------

def test_the_resilience_blocks_and_total_timeout_are_saved_from_the_form(admin_client):
    response = admin_client.post(ADD_URL, route_form(
        TWO_BACKENDS, total_timeout_ms="2500", load_balancing_strategy="latency_aware",
        health_check='{"interval_s": 1, "unhealthy_threshold": 2}', circuit_breaker='{"open_s": 5}'))
    assert response.status_code == 302, response.context["adminform"].form.errors
    route = Route.objects.get()
    assert (route.health_check, route.circuit_breaker, route.total_timeout_ms, route.load_balancing_strategy) == (
        {"interval_s": 1, "unhealthy_threshold": 2}, {"open_s": 5}, 2500, "latency_aware")


def test_an_empty_total_timeout_means_none(admin_client):
    assert admin_client.post(ADD_URL, route_form(TWO_BACKENDS)).status_code == 302
    assert Route.objects.get().total_timeout_ms == 0


def test_a_health_check_error_names_the_key_on_its_field(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, health_check='{"interval_s": 0}',
                                                     circuit_breaker='{"failure_statuses": [404]}'))
    errors = response.context["adminform"].form.errors
    assert errors["health_check"][0] == "interval_s: Must be a whole number from 1 to 3600."
    assert errors["circuit_breaker"][0].startswith("failure_statuses: ")
    assert not Route.objects.exists()


def test_a_misspelled_resilience_key_is_refused_on_its_field_and_nothing_is_saved(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, retry='{"max_retires": 3}',
                                                     health_check='{"interval": 3}',
                                                     circuit_breaker='{"treshold": 3}'))
    errors = response.context["adminform"].form.errors
    assert errors["retry"][0].startswith("max_retires: Unknown key; retry knows ")
    assert errors["health_check"][0].startswith("interval: Unknown key; health_check knows ")
    assert errors["circuit_breaker"][0].startswith("treshold: Unknown key; circuit_breaker knows ")
    assert not Route.objects.exists()


def test_the_change_form_refuses_a_misspelled_resilience_key_and_keeps_the_route(admin_client, route_doc):
    route = services.save_route(route_doc(retry={"max_retries": 2}), actor=None, source="api")
    backends = route.backends.all()
    rows = [{"host": b.url.rsplit(":", 1)[0], "port": str(b.port), "id": str(b.pk), "route": str(route.pk)}
            for b in backends]
    url = reverse("admin:routes_route_change", args=[route.pk])
    response = admin_client.post(url, route_form(rows, initial=len(rows), name=route.name,
                                                 external_path=route.external_path, internal_path="",
                                                 retry='{"max_retries": 2, "max_retires": 5}'))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["retry"][0].startswith("max_retires: Unknown key; ")
    route.refresh_from_db()
    assert route.retry == {"max_retries": 2}


def test_the_form_shows_examples_of_the_resilience_blocks(admin_client):
    page = admin_client.get(ADD_URL).content.decode()
    assert "healthy_threshold" in page and "half_open_requests" in page and "budget_ratio" in page


def test_each_backend_row_shows_its_health_and_links_to_its_page(admin_client, route_doc):
    route = services.save_route(route_doc(), actor=None, source="api")
    down, fresh = route.backends.all()
    BackendHealth.objects.update_or_create(backend=down, defaults={"state": "unhealthy", "reason": "status 503"})
    page = admin_client.get(reverse("admin:routes_route_change", args=[route.pk])).content.decode()
    assert "unhealthy" in page and "status 503" in page
    assert reverse("admin:routes_backendhealth_change", args=[down.pk]) in page
    assert reverse("admin:routes_backendhealth_change", args=[fresh.pk]) in page
    assert "not probed" in page


def test_saving_the_route_form_keeps_the_backend_ids(admin_client):
    admin_client.post(ADD_URL, route_form(TWO_BACKENDS))
    route = Route.objects.get()
    ids = list(route.backends.values_list("id", flat=True))
    rows = [{**backend, "id": str(pk), "route": str(route.pk)} for backend, pk in zip(TWO_BACKENDS, ids, strict=True)]
    url = reverse("admin:routes_route_change", args=[route.pk])
    assert admin_client.post(url, route_form(rows, initial=2, read_timeout_ms="1000")).status_code == 302
    assert list(route.backends.values_list("id", flat=True)) == ids
