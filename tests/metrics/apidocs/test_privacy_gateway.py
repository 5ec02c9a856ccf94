"""Shapes, never values: secrets, e-mails and ids sent through a real gateway, in a request body, a response body
and a query string, leave their fields in the stored rows and the learned document, and none of their values."""
from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from metrics.apidocs.openapi import document_for
from metrics.models import LearnedOperation
from routes.models import ConfigState
from routes.services import save_route
from tests.support.gateway import http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
SECRETS = {
    "password": "hunter",  # a plain word: kept as an enum candidate if it were not under a secret-looking key
    "api_key": "sk_live_51HxQpLkT0kenValue9876",
    "email": "alice.liddell@wonderland.example",
    "user_id": "8c1f0e7a-5b2d-4c3e-9f10-7a6b5c4d3e2f",
    "account": "acct_7f3a9c2e77aa12bc",
    "ip": "203.0.113.77",
}


def test_no_value_of_a_sampled_exchange_is_stored_or_shown(tmp_path):
    with UpstreamServer() as upstream:
        save_route({"name": "private", "external_path": "/private/{what}", "internal_path": "/{what}",
                    "methods": ["POST"], "backends": [{"host": "http://127.0.0.1", "port": upstream.port}],
                    "api_docs": {"sample_rate": 1}}, actor=None, source="test")
        gateway = start_gateway(tmp_path)
        try:
            gateway.wait_version(ConfigState.objects.get(pk=1).version)
            answer = json.dumps({"user": SECRETS, "token": SECRETS["api_key"]})
            query = (f"header=Content-Type:application/json&body={quote(answer)}&email={quote(SECRETS['email'])}"
                     f"&account={SECRETS['account']}")
            status, _, body = http("POST", f"{gateway.url}/private/respond?{query}", json.dumps(SECRETS).encode(),
                                   {"Content-Type": "application/json"})
            assert status == 200 and json.loads(body)["token"] == SECRETS["api_key"]  # the client got it all
        finally:
            assert gateway.stop() == 0
    stored = json.dumps(list(LearnedOperation.objects.values()), default=str)
    document = json.dumps(document_for("private"))
    operation = document_for("private")["paths"]["/private/respond"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(request["properties"]) == set(SECRETS)  # the fields are learned...
    assert request["properties"]["email"]["format"] == "email"
    assert request["properties"]["user_id"]["format"] == "uuid"
    for name, value in SECRETS.items():  # ...and none of the values
        assert value not in stored, name
        assert value not in document, name
