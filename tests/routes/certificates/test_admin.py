"""The certificates' admin: the key box is never filled, left empty it keeps the key, and a viewer never sees it."""
from __future__ import annotations

from typing import Any

import pytest
import trustme
from django.test import Client
from django.urls import reverse

from routes.models import AuditEntry, Certificate
from tests.routes.conftest import PASSWORD
from tests.support.certificates import ec_key_pem, issued
from tests.support.users import role_user

pytestmark = pytest.mark.django_db
PAIR = issued(trustme.CA(), "api.example.com")


def post(client: Client, url: str, **fields: str) -> Any:
    return client.post(url, {"name": "api", "hosts": "", "certificate": PAIR.chain, "key": PAIR.key, **fields})


@pytest.fixture
def logged_in(client, staff_user) -> Client:
    assert client.login(username="alice", password=PASSWORD)
    return client


@pytest.fixture
def row(logged_in) -> Certificate:
    response = post(logged_in, reverse("admin:routes_certificate_add"))
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else response
    return Certificate.objects.get()


def test_a_certificate_added_in_the_admin_is_saved_and_audited_without_its_key(row):
    assert (row.hosts, row.key) == (["api.example.com"], PAIR.key)
    assert AuditEntry.objects.get(object_type="certificate").source == "admin"
    assert "PRIVATE KEY" not in str(AuditEntry.objects.get().changes)


def test_the_change_page_never_shows_the_key_and_saving_it_empty_keeps_the_key(logged_in, row):
    change = reverse("admin:routes_certificate_change", args=[row.pk])
    page = logged_in.get(change).content.decode()
    assert PAIR.key.splitlines()[1] not in page and "PRIVATE KEY" not in page
    assert post(logged_in, change, key="", hosts="api.example.com", default="on").status_code == 302
    saved = Certificate.objects.get()
    assert (saved.key, saved.default) == (PAIR.key, True)


def test_a_key_that_does_not_match_is_shown_at_the_key_box(logged_in):
    response = post(logged_in, reverse("admin:routes_certificate_add"), key=ec_key_pem())
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["key"] == [
        "The key does not match the certificate (its public key is another's)."]
    assert not Certificate.objects.exists()


def test_a_viewers_page_has_no_key(row):
    viewer = Client()
    viewer.force_login(role_user("vera", "viewer"))
    page = viewer.get(reverse("admin:routes_certificate_change", args=[row.pk]))
    assert page.status_code == 200
    assert "PRIVATE KEY" not in page.content.decode() and "api.example.com" in page.content.decode()
    listing = viewer.get(reverse("admin:routes_certificate_changelist")).content.decode()
    assert "api.example.com" in listing


def test_deleting_in_the_admin_goes_through_the_service(logged_in, row):
    delete = reverse("admin:routes_certificate_delete", args=[row.pk])
    assert logged_in.post(delete, {"post": "yes"}).status_code == 302
    assert not Certificate.objects.exists()
    assert AuditEntry.objects.filter(object_type="certificate", action="delete").exists()
