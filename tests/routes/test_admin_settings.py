"""The gateway settings page of the admin: each block edited as JSON, saved like PUT /api/config/settings/."""
from __future__ import annotations

import json

import pytest
from django.contrib import messages
from django.urls import reverse

from routes import import_export, services
from routes.models import AuditEntry, GatewaySettings
from routes.secrets import REDACTED
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db

CHANGE_URL = reverse("admin:routes_gatewaysettings_change", args=[1])
LIST_URL = reverse("admin:routes_gatewaysettings_changelist")
JWT_SECRET = "jwt-secret-value-0123456789abcdef-xyz"
BLOCKS = ("jwt", "rate_limit", "ai", "cors", "limits", "ip_rules", "security_headers", "plugins")


@pytest.fixture
def admin_client(client, operator):
    assert client.login(username="otto", password=PASSWORD)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    assert client.login(username="vera", password=PASSWORD)
    return client


@pytest.fixture
def stored():
    import_export.import_config({"jwt": {"secret": JWT_SECRET, "issuer": "me"}, "rate_limit": {"limit": 10,
                                                                                           "window_s": 60},
                            "routers": []}, actor=None, source="import")


def shown(client) -> dict[str, str]:
    """What each textarea of the page holds, as the browser would send it back unchanged."""
    response = client.get(CHANGE_URL)
    assert response.status_code == 200
    page_form = response.context["adminform"].form
    return {block: page_form[block].value() for block in BLOCKS} | {"_save": "Save"}


def texts(response) -> list[str]:
    return [str(message) for message in messages.get_messages(response.wsgi_request)]


def test_an_operator_changes_a_block_and_it_is_saved_audited_and_announced(admin_client, stored):
    start = services.config_version().version
    data = shown(admin_client) | {"ip_rules": '{"deny": ["10.0.0.13"]}'}
    response = admin_client.post(CHANGE_URL, data, follow=True)
    assert GatewaySettings.objects.get().ip_rules == {"deny": ["10.0.0.13"]}
    entry = AuditEntry.objects.get(source="admin")
    assert (entry.action, entry.object_type, entry.object_repr, entry.actor_name) == (
        "update", "settings", "ip_rules", "otto")
    assert services.config_version().version == start + 1
    assert any("changed successfully" in text for text in texts(response))


def test_the_page_shows_secrets_redacted_and_saving_it_unchanged_keeps_them(admin_client, stored):
    page = admin_client.get(CHANGE_URL).content.decode()
    assert JWT_SECRET not in page and REDACTED in page
    data = shown(admin_client) | {"jwt": json.dumps({"secret": REDACTED, "issuer": "you"})}
    admin_client.post(CHANGE_URL, data)
    assert GatewaySettings.objects.get().jwt == {"secret": JWT_SECRET, "issuer": "you"}


def test_an_error_is_shown_on_the_field_its_path_names_and_nothing_is_saved(admin_client, stored):
    before = (services.config_version().version, AuditEntry.objects.count())
    data = shown(admin_client) | {"rate_limit": '{"limit": 10, "windw": 60}', "cors": '{"origins": 5}'}
    response = admin_client.post(CHANGE_URL, data)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message.startswith("windw: Unknown key") for message in errors["rate_limit"])
    assert errors["cors"][0].startswith("origins")
    assert GatewaySettings.objects.get().rate_limit == {"limit": 10, "window_s": 60}
    assert (services.config_version().version, AuditEntry.objects.count()) == before


def test_text_that_is_not_json_is_refused_on_its_field(admin_client, stored):
    response = admin_client.post(CHANGE_URL, shown(admin_client) | {"limits": "{max_body_bytes: 1"})
    assert response.context["adminform"].form.errors["limits"] == ["Enter a valid JSON."]


def test_an_empty_textarea_clears_the_block(admin_client, stored):
    admin_client.post(CHANGE_URL, shown(admin_client) | {"rate_limit": ""})
    assert GatewaySettings.objects.get().rate_limit is None
    assert AuditEntry.objects.get(source="admin").changes == {"rate_limit": [{"limit": 10, "window_s": 60}, None]}


def test_saving_without_a_change_says_so_instead_of_success(admin_client, stored):
    before = (services.config_version().version, AuditEntry.objects.count())
    response = admin_client.post(CHANGE_URL, shown(admin_client), follow=True)
    assert texts(response) == ["No setting was changed."]
    assert (services.config_version().version, AuditEntry.objects.count()) == before


def test_the_list_opens_the_one_row_and_an_operator_can_fill_it_before_any_import(admin_client):
    response = admin_client.get(LIST_URL)
    assert (response.status_code, response["Location"]) == (302, CHANGE_URL)
    page = admin_client.get(CHANGE_URL)
    assert page.status_code == 200
    admin_client.post(CHANGE_URL, {block: "" for block in BLOCKS} | {"security_headers": '{"frame_options": '
                                                                                           '"SAMEORIGIN"}'})
    assert GatewaySettings.objects.get().security_headers == {"frame_options": "SAMEORIGIN"}


def test_a_viewer_following_the_list_sees_the_blocks_read_only_with_secrets_redacted(viewer_client, stored):
    page = viewer_client.get(LIST_URL, follow=True).content.decode()
    assert "<textarea" not in page
    assert "issuer" in page and JWT_SECRET not in page
