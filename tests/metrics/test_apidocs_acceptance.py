"""Issue 18's acceptance test of API docs learned from traffic: the API tour (tests/support/api_tour.py) sent
through a real gateway to Rusta's own admin API, every request sampled; the learned documents compared with
drf-spectacular's /api/schema/ (metrics.apidocs.compare): path recall >= 0.95, field-level F1 >= 0.9.

Routes match whole paths, so the API is put behind one catch-all route per depth (`/api/{a}` ... `/api/{a}/{b}/
{c}/{d}/{e}`), none of which knows the API: every literal and parameter of the learned paths comes from traffic.
The routes' learned documents are compared together (their paths never overlap: one depth each).
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token

from metrics.apidocs.compare import compare
from metrics.apidocs.openapi import document_for
from metrics.models import LearnedOperation, Verdict
from routes.models import ConfigState
from routes.services import save_route
from tests.support.api_tour import ApiTour
from tests.support.gateway import http, start_gateway

pytestmark = pytest.mark.django_db(transaction=True)
PARAMS = ("a", "b", "c", "d", "e")


def catch_all_routes(admin_port: int) -> list[str]:
    """One route per depth under /api/ to the admin listener, every request sampled."""
    names = []
    for depth in range(1, len(PARAMS) + 1):
        name = f"admin-api-{depth}"
        pattern = "/api/" + "/".join("{" + p + "}" for p in PARAMS[:depth])
        save_route({"name": name, "external_path": pattern, "methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
                    "backends": [{"host": "http://127.0.0.1", "port": admin_port}],
                    "timeout": {"read_timeout": 30}, "api_docs": {"sample_rate": 1}},
                   actor=None, source="test")
        names.append(name)
    return names


def record_verdicts() -> None:
    """What the abuse detection would have recorded: the verdicts API has something to show and lift."""
    now = timezone.now()
    for index, kind in enumerate(("burst", "enumeration")):
        Verdict.objects.create(
            route="shop", client=f"ip:203.0.113.{index + 1}", kind=kind, score=12.5 + index, model_version="robust-1",
            action="block", features=[{"name": "requests", "value": 480, "baseline": 12, "population": 20,
                                       "score": 12.5}],
            window_start=now - timedelta(seconds=10), window_end=now, expires_at=now + timedelta(minutes=10))


def learned_union(names: list[str]) -> dict:
    """The routes' learned documents as one document."""
    paths: dict = {}
    for name in names:
        paths.update(document_for(name)["paths"])
    return {"openapi": "3.0.3", "info": {"title": "learned", "version": "1"}, "paths": paths}


def test_the_tour_through_the_gateway_learns_the_admin_apis_paths_and_fields(tmp_path):
    user = get_user_model().objects.create_superuser("tourist", password="a-long-test-password-1")
    token = Token.objects.create(user=user).key
    gateway = start_gateway(tmp_path, extra_env={"RUSTA_METRICS_FLUSH_INTERVAL": "0.5"})
    try:
        names = catch_all_routes(gateway.admin_port)
        gateway.wait_version(ConfigState.objects.get(pk=1).version)
        record_verdicts()
        calls = ApiTour(gateway.url, token).run()
        assert len(calls) > 100
        status, _, body = http("GET", f"{gateway.admin_url}/api/schema/?format=json",
                               headers={"Authorization": f"Token {token}", "Accept": "application/json"})
        assert status == 200
        reference = json.loads(body)
    finally:
        assert gateway.stop() == 0  # a clean stop writes what was learned last
    assert LearnedOperation.objects.filter(route__in=names).exists()

    learned = learned_union(names)
    result = compare(learned, reference)
    print(f"\nlearned from {len(calls)} calls: {result.summary()}")
    print("missing paths:", result.missing_paths, "extra fields:", result.false_positives[:10])
    assert result.path_recall >= 0.95, result.missing_paths
    assert result.f1 >= 0.9, result.summary()
