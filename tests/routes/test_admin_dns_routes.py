"""The admin's route form asks a dns route only for what it uses: its path and methods may be left empty."""
from __future__ import annotations

import pytest

from routes.models import Route
from tests.routes.conftest import PASSWORD
from tests.routes.test_admin import ADD_URL, TWO_BACKENDS, route_form

pytestmark = pytest.mark.django_db
RESOLVERS = [{"host": "192.0.2.53", "port": "53"}]


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def test_a_dns_route_is_added_without_a_path_or_methods(admin_client):
    response = admin_client.post(ADD_URL, route_form(RESOLVERS, name="resolvers", protocol="dns", external_path="",
                                                     internal_path="", methods=[]))
    assert response.status_code == 302, response.context["adminform"].form.errors
    route = Route.objects.get()
    assert (route.external_path, route.methods) == ("/dns-query", ["GET", "POST"])
    assert [backend.url for backend in route.backends.all()] == ["dns://192.0.2.53:53"]


def test_an_http_route_still_needs_its_path_and_methods_in_the_apis_words(admin_client):
    response = admin_client.post(ADD_URL, route_form(TWO_BACKENDS, external_path="", internal_path="", methods=[]))
    errors = response.context["adminform"].form.errors
    assert errors["external_path"] == ["The path is required."]
    assert errors["methods"][0].startswith("List at least one HTTP method")
    assert not Route.objects.exists()
