"""`/metrics` on the admin listener: open by default, closed by RUSTA_METRICS_TOKEN (Bearer or Basic)."""
from __future__ import annotations

import base64

import pytest

pytestmark = pytest.mark.django_db
TOKEN = "scrape-token-0123456789"


def test_it_is_open_by_default(client):
    assert client.get("/metrics").status_code == 200


@pytest.fixture
def token(settings):
    settings.RUSTA_METRICS_TOKEN = TOKEN


def test_with_a_token_set_a_scrape_without_it_is_401(client, token):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_the_token_works_as_a_bearer_token(client, token):
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200


def test_the_token_works_as_a_basic_auth_password(client, token):
    credentials = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {credentials}").status_code == 200


@pytest.mark.parametrize("authorization", [f"Bearer {TOKEN}x", "Bearer ", "Basic !!!", f"Token {TOKEN}"])
def test_a_wrong_token_is_401(client, token, authorization):
    assert client.get("/metrics", HTTP_AUTHORIZATION=authorization).status_code == 401
