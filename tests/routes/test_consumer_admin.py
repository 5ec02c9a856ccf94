"""The consumers' admin: the list, a consumer's page with its keys by prefix, and issuing, rotating and revoking a
key (the page that issues one is the only page that ever shows it)."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from routes.consumers import services
from routes.consumers.models import ApiKey, Consumer
from routes.models import AuditEntry
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, operator):
    assert client.login(username="otto", password=PASSWORD)
    return client


@pytest.fixture
def billing() -> Consumer:
    return services.save_consumer({"name": "billing", "jwt_subjects": ["alice"]}, actor=None, source="api")


def issued_key(page: bytes) -> str:
    found = re.search(rb'id="rusta-issued-key"[^>]*>(rk_[^<]+)<', page)
    assert found, page
    return found.group(1).decode()


def test_a_consumer_is_added_with_tags_and_subjects_through_the_form(admin_client):
    response = admin_client.post(reverse("admin:routes_consumer_add"), {
        "name": "shipping", "enabled": "on", "tags": "partner, eu", "jwt_subjects": "svc-shipping\nbob\n"})
    assert response.status_code == 302
    document = services.consumer_document(Consumer.objects.get(name="shipping"))
    assert (document["tags"], document["jwt_subjects"]) == (["partner", "eu"], ["svc-shipping", "bob"])
    assert AuditEntry.objects.get(object_type="consumer").source == "admin"


def test_a_subject_of_another_consumer_is_a_field_error(admin_client, billing):
    response = admin_client.post(reverse("admin:routes_consumer_add"), {
        "name": "shipping", "enabled": "on", "tags": "", "jwt_subjects": "alice"})
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["jwt_subjects"] == [
        "'alice' is already a subject of consumer 'billing'."]


def test_issuing_shows_the_key_once_and_never_again(admin_client, billing):
    url = reverse("admin:routes_consumer_key_issue", args=[billing.pk])
    assert b"rusta-key-action" in admin_client.get(url).content  # asks first
    response = admin_client.post(url, {"ttl_s": ""})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = issued_key(response.content)
    assert ApiKey.objects.get().prefix == key[:11]
    change = admin_client.get(reverse("admin:routes_consumer_change", args=[billing.pk]))
    assert key[:11].encode() in change.content and key.encode() not in change.content
    assert b"/revoke/" in change.content
    listing = admin_client.get(reverse("admin:routes_consumer_changelist"))
    assert key.encode() not in listing.content


def test_rotating_from_the_admin_shows_the_new_key_and_the_old_ones_end(admin_client, billing):
    old = services.issue_key(billing, actor=None, source="api")
    url = reverse("admin:routes_consumer_key_rotate", args=[billing.pk, old.row.pk])
    response = admin_client.post(url, {"overlap_s": "60"})
    assert issued_key(response.content) != old.key
    assert b"works until" in response.content
    old.row.refresh_from_db()
    assert old.row.expires_at is not None


def test_a_bad_overlap_asks_again_with_the_reason(admin_client, billing):
    old = services.issue_key(billing, actor=None, source="api")
    response = admin_client.post(reverse("admin:routes_consumer_key_rotate", args=[billing.pk, old.row.pk]),
                                 {"overlap_s": "soon"})
    assert b"whole number of seconds" in response.content
    assert ApiKey.objects.count() == 1


def test_revoking_from_the_admin_ends_the_key(admin_client, billing):
    row = services.issue_key(billing, actor=None, source="api").row
    response = admin_client.post(reverse("admin:routes_consumer_key_revoke", args=[billing.pk, row.pk]))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_a_viewer_sees_the_keys_but_cannot_issue_one(client, viewer, billing):
    services.issue_key(billing, actor=None, source="api")
    assert client.login(username="vera", password=PASSWORD)
    page = client.get(reverse("admin:routes_consumer_change", args=[billing.pk]))
    assert page.status_code == 200 and b"rk_" in page.content
    assert b"rusta-issue-key" not in page.content and b"/revoke/" not in page.content
    assert client.post(reverse("admin:routes_consumer_key_issue", args=[billing.pk])).status_code == 403
