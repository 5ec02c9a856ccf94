"""A change of the gateway-wide settings through /api/config/settings/ reaches a running `runproxy` within 2 s."""
from __future__ import annotations

import json

import pytest

from routes.services import save_route
from tests.support.gateway import Gateway, http, serving_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/config/settings/"


def patch_and_wait(api, gateway: Gateway, blocks: dict) -> None:
    """PATCH the settings, then wait (2 s at most, else the test fails) until the gateway serves that version."""
    response = api.patch(URL, blocks, format="json")
    assert response.status_code == 200, response.json()
    gateway.wait_version(response.json()["version"], timeout=2.0)


def test_a_patched_ip_rule_is_enforced_and_lifted_by_a_running_gateway_within_two_seconds(tmp_path, operator_api):
    with UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"],
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        with serving_gateway(tmp_path) as gateway:
            assert http("GET", gateway.url + "/echo")[0] == 200

            patch_and_wait(operator_api, gateway, {"ip_rules": {"deny": ["127.0.0.0/8"]}})
            status, _, body = http("GET", gateway.url + "/echo")
            assert (status, json.loads(body)["type"]) == (403, "client_forbidden")

            patch_and_wait(operator_api, gateway, {"ip_rules": None})
            assert http("GET", gateway.url + "/echo")[0] == 200
