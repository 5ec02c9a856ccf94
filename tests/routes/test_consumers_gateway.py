"""Consumers end to end: configured through the service layer like an operator, served by a real `runproxy` that
reloads its table from the database, in front of a real backend on loopback."""
from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import jwt as pyjwt
import pytest

from routes.consumers import services
from routes.consumers.models import Consumer
from routes.import_export import import_config
from routes.models import AuditEntry, ConfigState
from tests.protocols.auth.tokens import ISSUER, SECRET
from tests.support.gateway import Gateway, http, serving_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 3


def bearer(sub: str) -> dict[str, str]:
    token = pyjwt.encode({"sub": sub, "iss": ISSUER, "exp": int(time.time()) + 300}, SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


def api_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def route(name: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "external_path": f"/{name}", "methods": ["GET"],
            "backends": [{"host": "http://127.0.0.1", "port": port}], **extra}


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def billing() -> Consumer:
    return services.save_consumer({"name": "billing", "jwt_subjects": ["alice"]}, actor=None, source="test")


@pytest.fixture
def gateway(tmp_path, upstream, billing) -> Iterator[Gateway]:
    # One gateway-wide limit per consumer: every route shares it, whichever credential the request carries.
    import_config({"version": 1, "routers": [route("keyed", upstream.port, auth="key"),
                                             route("tokens", upstream.port, auth="jwt")],
                   "jwt": {"secret": SECRET, "issuer": ISSUER},
                   "rate_limit": {"limit": LIMIT, "window_s": 60, "scope": ["consumer"]}},
                  actor=None, source="test")
    with serving_gateway(tmp_path) as running:
        yield running


def served(gateway: Gateway) -> float:
    """Seconds until the gateway serves the configuration as it is now in the database."""
    return gateway.wait_version(ConfigState.objects.get(pk=1).version)


def status_of(gateway: Gateway, path: str, headers: dict[str, str]) -> int:
    return http("GET", gateway.url + path, headers=headers)[0]


def test_an_api_key_client_and_a_jwt_client_of_one_consumer_share_one_limit(gateway, upstream, billing):
    key = services.issue_key(billing, actor=None, source="test").key
    served(gateway)
    assert [status_of(gateway, "/keyed", api_key(key)) for _ in range(LIMIT)] == [200] * LIMIT
    status, _, body = http("GET", gateway.url + "/tokens", headers=bearer("alice"))
    assert (status, json.loads(body)["type"]) == (429, "rate_limited")
    assert status_of(gateway, "/tokens", bearer("stranger")) == 200  # no consumer: counted by its address
    assert [seen.header("x-consumer-name") for seen in upstream.requests] == [["billing"]] * LIMIT + [[]]


def test_a_rotated_key_keeps_working_during_the_overlap_and_stops_after(gateway, billing):
    old = services.issue_key(billing, actor=None, source="test")
    new = services.rotate_key(old.row, actor=None, source="test", overlap_s=3)
    rotated_at = time.monotonic()
    served(gateway)
    assert status_of(gateway, "/keyed", api_key(new.key)) == 200
    assert status_of(gateway, "/keyed", api_key(old.key)) == 200
    assert time.monotonic() - rotated_at < 3, "the machine is too slow for the overlap this test gives"
    while time.monotonic() - rotated_at < 3.2:  # no reload needed: the gateway checks the expiry itself
        time.sleep(0.1)
    status, _, body = http("GET", gateway.url + "/keyed", headers=api_key(old.key))
    assert (status, json.loads(body)["type"]) == (401, "invalid_api_key")
    assert status_of(gateway, "/keyed", api_key(new.key)) == 200
    trail = AuditEntry.objects.filter(object_type="api_key").values_list("action", flat=True)
    assert sorted(trail) == ["create", "create", "update"]


def test_a_revoked_key_is_refused_as_soon_as_the_table_reloads(gateway, billing):
    issued = services.issue_key(billing, actor=None, source="test")
    served(gateway)
    assert status_of(gateway, "/keyed", api_key(issued.key)) == 200
    services.revoke_key(issued.row, actor=None, source="test")
    assert served(gateway) < 2.0
    assert status_of(gateway, "/keyed", api_key(issued.key)) == 401


def test_an_unknown_key_gets_the_documented_401_body(gateway, upstream):
    status, headers, body = http("GET", gateway.url + "/keyed", headers=api_key("rk_not-a-key-anyone-issued"))
    assert status == 401
    answer = json.loads(body)
    assert set(answer) == {"error", "type", "request_id"} and answer["type"] == "invalid_api_key"
    assert {name.lower(): value for name, value in headers.items()}["www-authenticate"].startswith("ApiKey")
    assert upstream.requests == []
