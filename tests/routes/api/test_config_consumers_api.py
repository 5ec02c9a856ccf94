"""POST /api/config/diff/ and /api/config/apply/ with a `consumers` section: names, changes by path, keys unshown."""
from __future__ import annotations

import json

import pytest

from routes import services
from routes.consumers import services as consumer_services
from routes.consumers.models import ApiKey, Consumer

pytestmark = pytest.mark.django_db

KEY = "rk_" + "Ap1K3y-x" * 4


@pytest.fixture
def stored():
    consumer_services.save_consumer({"name": "billing", "tags": ["partner"]}, actor=None, source="test")
    consumer_services.save_consumer({"name": "ops"}, actor=None, source="test")


def test_the_diff_answers_consumers_by_name_and_changes_nothing(operator_api, stored):
    version = services.config_version().version
    response = operator_api.post("/api/config/diff/?prune=true", {"consumers": {
        "billing": {"tags": ["partner", "eu"]}, "search": {"api_keys": [{"key": KEY}]}}}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["consumers"] == {"created": ["search"], "updated": ["billing"], "deleted": ["ops"], "unchanged": []}
    assert {"path": "consumers.billing.tags", "op": "change", "secret": False, "old": ["partner"],
            "new": ["partner", "eu"]} in body["changes"]
    assert KEY not in json.dumps(body) and f"{KEY[:11]}…" in json.dumps(body, ensure_ascii=False)
    assert sorted(Consumer.objects.values_list("name", flat=True)) == ["billing", "ops"]
    assert services.config_version().version == version


def test_apply_writes_consumers_and_their_keys(operator_api, stored):
    response = operator_api.post("/api/config/apply/", {"consumers": {"search": {"api_keys": [{"key": KEY}]}}},
                                 format="json")
    assert response.status_code == 200 and response.json()["applied"] is True
    assert ApiKey.objects.get(consumer__name="search").digest == consumer_services.stored_digest(KEY)


def test_a_key_reference_is_refused_over_http(operator_api, stored, monkeypatch):
    monkeypatch.setenv("RUSTA_TEST_KEY", KEY)
    response = operator_api.post("/api/config/apply/", {"consumers": {
        "search": {"api_keys": [{"key": "${env:RUSTA_TEST_KEY}"}]}}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["consumers.search.api_keys[0].key"]
    assert not Consumer.objects.filter(name="search").exists()


def test_an_unknown_key_is_a_400_by_path(operator_api, stored):
    response = operator_api.post("/api/config/apply/", {"consumers": {"billing": {"tag": ["x"]}}}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["consumers.billing.tag"]
