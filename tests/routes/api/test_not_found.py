"""A URL under /api/ that no endpoint answers is a JSON 404 in the API's error shape, never Django's HTML page."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("url", ["/api/nope/", "/api/routes/1/nope/", "/api/nope"])
def test_an_unknown_api_url_answers_json_404_in_the_error_shape(api, url):
    response = api.get(url)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"errors": {"": [f"No such endpoint: GET {url}."]}}


def test_an_unknown_api_url_answers_json_to_a_caller_without_credentials_too():
    response = APIClient().post("/api/nope/", {"a": 1}, format="json")
    assert response.status_code == 404
    assert response.json() == {"errors": {"": ["No such endpoint: POST /api/nope/."]}}
