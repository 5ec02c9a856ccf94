"""API keys and consumers at the WebSocket handshake: a real client through the proxy on loopback to a real
WebSocket backend. A key (header, `Authorization: Bearer rk_...` or the `api_key` query parameter) or a JWT
resolves to a consumer whose name the backend gets; a refused key is the HTTP proxy's 401/403 before any backend."""
from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from protocols.auth.consumers import DIRECTORY_SETTING, ConsumerDirectory, ConsumerIdentity, KeyGrant, key_digest
from protocols.table import RouteTable
from tests.protocols.auth.tokens import SECRET, claims, with_pyjwt
from tests.support.edge import EdgeServer
from tests.support.wsbackend import WebSocketBackend, ws_route

KEY = "rk_billing-key-0123456789abcdefghij"
FROZEN_KEY = "rk_frozen-key-0123456789abcdefghij"
BILLING = ConsumerIdentity("billing")
FROZEN = ConsumerIdentity("frozen", enabled=False)
DIRECTORY = ConsumerDirectory(
    keys={key_digest(KEY.encode()): KeyGrant(BILLING), key_digest(FROZEN_KEY.encode()): KeyGrant(FROZEN)},
    subjects={"alice": BILLING, "ghost": FROZEN},
)
SHARED_LIMIT = {"rate_limit": {"limit": 2, "window_s": 60, "scope": ["consumer"]}}


@pytest.fixture
def backend() -> Iterator[WebSocketBackend]:
    with WebSocketBackend() as server:
        yield server


@pytest.fixture
def edge(backend: WebSocketBackend) -> Iterator[EdgeServer]:
    routes = [ws_route("keys", "/ws/keys", backend.port, auth="key"),
              ws_route("either", "/ws/either", backend.port, auth="either"),
              ws_route("limited", "/ws/limited", backend.port, auth="either", policies=SHARED_LIMIT),
              ws_route("open", "/ws/open", backend.port)]
    server = EdgeServer(routes)
    server.state.install(RouteTable(routes, version=1, settings={"jwt": {"secret": SECRET},
                                                                  DIRECTORY_SETTING: DIRECTORY}))
    with server:
        yield server


def echoes(edge: EdgeServer, target: str, headers: list[tuple[str, str]] | None = None) -> bool:
    with connect(f"ws://127.0.0.1:{edge.port}{target}", open_timeout=10, additional_headers=headers) as ws:
        ws.send("ping")
        return ws.recv(timeout=5) == "ping"


def refusal(edge: EdgeServer, target: str, headers: list[tuple[str, str]] | None = None) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught:
        connect(f"ws://127.0.0.1:{edge.port}{target}", open_timeout=10, additional_headers=headers)
    return caught.value


def body(exc: InvalidStatus) -> dict[str, Any]:
    return json.loads(exc.response.body)


def bearer_token(sub: str) -> tuple[str, str]:
    return "Authorization", "Bearer " + with_pyjwt(claims(sub=sub, aud=None), SECRET, "HS256").decode()


# --- Admitted -----------------------------------------------------------------------------------------------------

def test_a_valid_key_connects_and_the_backend_learns_the_consumer_but_never_the_key(edge, backend):
    assert echoes(edge, "/ws/keys", [("X-API-Key", KEY), ("X-Consumer-Name", "admin")])
    seen = backend.handshakes[-1]
    assert seen.header("x-consumer-name") == ["billing"]
    assert seen.header("x-api-key") == []


def test_a_key_sent_as_a_bearer_credential_connects_and_is_not_forwarded(edge, backend):
    assert echoes(edge, "/ws/keys", [("Authorization", "Bearer " + KEY)])
    seen = backend.handshakes[-1]
    assert seen.header("x-consumer-name") == ["billing"]
    assert seen.header("authorization") == []


def test_a_browser_can_send_its_key_as_the_api_key_query_parameter_which_the_backend_never_sees(edge, backend):
    assert echoes(edge, f"/ws/keys?room=7&api_key={KEY}&x=%2F")
    seen = backend.handshakes[-1]
    assert seen.path == "/ws/keys?room=7&x=%2F"
    assert seen.header("x-consumer-name") == ["billing"]


def test_a_key_in_a_header_wins_over_the_query_parameter_which_is_still_removed(edge, backend):
    assert echoes(edge, "/ws/keys?api_key=rk_not-a-key-anybody-issued", [("X-API-Key", KEY)])
    assert backend.handshakes[-1].path == "/ws/keys"


def test_an_either_route_takes_a_jwt_and_names_its_subjects_consumer(edge, backend):
    assert echoes(edge, "/ws/either", [bearer_token("alice"), ("X-Consumer-Name", "admin")])
    seen = backend.handshakes[-1]
    assert seen.header("x-consumer-name") == ["billing"]
    assert seen.header("authorization")[0].startswith("Bearer ey")  # the token itself still goes upstream


def test_an_either_route_takes_a_key_too(edge, backend):
    assert echoes(edge, "/ws/either", [("X-API-Key", KEY)])
    assert backend.handshakes[-1].header("x-consumer-name") == ["billing"]


def test_on_a_route_without_auth_an_api_key_parameter_is_the_backends_own(edge, backend):
    assert echoes(edge, "/ws/open?api_key=backend-value", [("X-Consumer-Name", "admin")])
    seen = backend.handshakes[-1]
    assert seen.path == "/ws/open?api_key=backend-value"
    assert seen.header("x-consumer-name") == []


# --- Refused ------------------------------------------------------------------------------------------------------

def test_a_wrong_key_is_401_invalid_api_key_with_the_http_proxys_body_and_no_backend_contact(edge, backend):
    exc = refusal(edge, "/ws/keys", [("X-API-Key", "rk_nobody-knows-this-one")])
    assert exc.response.status_code == 401
    assert body(exc)["type"] == "invalid_api_key"
    assert body(exc)["request_id"] == exc.response.headers["X-Request-ID"]
    assert exc.response.headers["Content-Type"] == "application/json"
    assert exc.response.headers["WWW-Authenticate"] == 'ApiKey header="X-API-Key", error="invalid_api_key"'
    assert backend.handshakes == []


def test_a_wrong_key_in_the_query_is_401_invalid_api_key(edge, backend):
    exc = refusal(edge, "/ws/keys?api_key=rk_nobody-knows-this-one")
    assert (exc.response.status_code, body(exc)["type"]) == (401, "invalid_api_key")
    assert backend.handshakes == []


def test_a_key_given_twice_in_the_query_is_refused_as_malformed(edge, backend):
    exc = refusal(edge, f"/ws/keys?api_key={KEY}&api_key={KEY}")
    assert (exc.response.status_code, body(exc)["type"]) == (401, "invalid_api_key")


def test_a_handshake_without_a_key_is_asked_for_one(edge, backend):
    exc = refusal(edge, "/ws/keys")
    assert (exc.response.status_code, body(exc)["type"]) == (401, "unauthorized")
    assert exc.response.headers["WWW-Authenticate"] == 'ApiKey header="X-API-Key"'


def test_an_either_route_without_a_credential_asks_for_a_key_or_a_token(edge, backend):
    exc = refusal(edge, "/ws/either")
    assert exc.response.status_code == 401
    assert exc.response.headers["WWW-Authenticate"].startswith("Bearer")
    assert "ApiKey" in exc.response.headers["WWW-Authenticate"]


def test_a_disabled_consumers_key_is_403_consumer_disabled(edge, backend):
    exc = refusal(edge, "/ws/keys", [("X-API-Key", FROZEN_KEY)])
    assert (exc.response.status_code, body(exc)["type"]) == (403, "consumer_disabled")
    assert backend.handshakes == []


def test_a_disabled_consumers_token_is_403_consumer_disabled(edge, backend):
    exc = refusal(edge, "/ws/either", [bearer_token("ghost")])
    assert (exc.response.status_code, body(exc)["type"]) == (403, "consumer_disabled")
    assert backend.handshakes == []


def test_a_key_and_a_token_of_one_consumer_share_one_consumer_limit(edge, backend):
    assert echoes(edge, "/ws/limited", [("X-API-Key", KEY)])
    assert echoes(edge, "/ws/limited", [bearer_token("alice")])
    exc = refusal(edge, "/ws/limited?api_key=" + KEY)
    assert (exc.response.status_code, body(exc)["type"]) == (429, "rate_limited")
    assert len(backend.handshakes) == 2
