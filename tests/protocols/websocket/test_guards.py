"""The request guards at the WebSocket handshake: IP rules, head limits and the Origin check refuse with 403/431
before JWT, rate limits or any backend; the route's blocks replace the gateway-wide ones."""
from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin

from protocols.balancing import Balancing
from protocols.dataplane import DataPlane, ProxyOptions
from protocols.errors import GatewayError
from protocols.http.access import AccessControl
from protocols.plan import build_plan
from protocols.table import LiveTable, RouteSpec, RouteTable
from protocols.websocket import WebSocketProxy
from protocols.websocket import app as websocket_app
from protocols.websocket.guards import GuardsMisconfigured, check_handshake
from tests.support.edge import EdgeServer
from tests.support.upstream import refused_port
from tests.support.wsbackend import WebSocketBackend, ws_route

DENY_LOOPBACK = {"ip_rules": {"deny": ["127.0.0.1/32"]}}
ALLOW_OTHER_NETWORK = {"ip_rules": {"allow": ["10.0.0.0/8"]}}
ALLOW_LOOPBACK = {"ip_rules": {"allow": ["127.0.0.0/8"]}}
CORS_APP = {"cors": {"origins": ["https://app.example"]}}


@pytest.fixture
def backend() -> Iterator[WebSocketBackend]:
    with WebSocketBackend() as server:
        yield server


def edge_with(routes: list[RouteSpec], settings: dict[str, Any] | None = None) -> EdgeServer:
    """An EdgeServer whose table carries these gateway-wide blocks."""
    edge = EdgeServer(routes)
    edge.state.install(RouteTable(routes, version=1, settings=settings))
    return edge


def refusal(port: int, path: str, **options: Any) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as caught:
        connect(f"ws://127.0.0.1:{port}{path}", open_timeout=10, **options)
    return caught.value


def body(exc: InvalidStatus) -> dict[str, str]:
    return json.loads(exc.response.body)


def echoes(port: int, path: str, **options: Any) -> bool:
    with connect(f"ws://127.0.0.1:{port}{path}", open_timeout=10, **options) as ws:
        ws.send("ping")
        return ws.recv(timeout=5) == "ping"


# IP rules


def test_a_denied_address_gets_403_and_the_backend_sees_no_connection(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=DENY_LOOPBACK)]) as edge:
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 403
    assert body(exc)["type"] == "client_forbidden"
    assert exc.response.headers["Content-Type"] == "application/json"
    assert exc.response.headers["X-Request-ID"] == body(exc)["request_id"]
    assert backend.handshakes == []


def test_an_address_outside_the_allow_list_gets_403(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=ALLOW_OTHER_NETWORK)]) as edge:
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 403
    assert body(exc)["type"] == "client_forbidden"
    assert backend.handshakes == []


def test_an_allowed_address_is_relayed(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=ALLOW_LOOPBACK)]) as edge:
        assert echoes(edge.port, "/ws/chat")


def test_the_gateway_wide_ip_rules_apply_to_a_route_without_its_own(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port)], settings=DENY_LOOPBACK) as edge:
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 403
    assert backend.handshakes == []


def test_a_route_can_switch_the_gateway_wide_ip_rules_off(backend: WebSocketBackend) -> None:
    route = ws_route("chat", "/ws/chat", backend.port, policies={"ip_rules": {"enabled": False}})
    with edge_with([route], settings=DENY_LOOPBACK) as edge:
        assert echoes(edge.port, "/ws/chat")


def test_a_routes_own_ip_rules_replace_the_gateway_wide_ones(backend: WebSocketBackend) -> None:
    route = ws_route("chat", "/ws/chat", backend.port, policies=ALLOW_LOOPBACK)
    with edge_with([route], settings=DENY_LOOPBACK) as edge:
        assert echoes(edge.port, "/ws/chat")


def test_a_denied_address_gets_403_not_404_on_a_path_without_a_route(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port)], settings=DENY_LOOPBACK) as edge:
        exc = refusal(edge.port, "/ws/nothing-here")
    assert exc.response.status_code == 403
    assert body(exc)["type"] == "client_forbidden"


def test_ip_rules_refuse_before_the_authorization_hook_runs(
        backend: WebSocketBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []

    async def deny(*args: object) -> None:
        calls.append(args)
        raise GatewayError(401, "unauthorized", "token required")

    monkeypatch.setattr(websocket_app, "authorize_handshake", deny)
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=DENY_LOOPBACK)]) as edge:
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 403
    assert calls == []


def test_a_guard_refusal_is_counted_as_rejected(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=DENY_LOOPBACK)]) as edge:
        refusal(edge.port, "/ws/chat")
        assert edge.app is not None
        rows = edge.app.websocket.metrics.snapshot()
    assert rows[0]["rejected"] == 1 and rows[0]["opened"] == 0


# The Origin check


def test_an_origin_the_cors_policy_does_not_allow_gets_403_and_the_backend_sees_nothing(
        backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=CORS_APP)]) as edge:
        exc = refusal(edge.port, "/ws/chat", origin=Origin("https://evil.example"))
    assert exc.response.status_code == 403
    assert body(exc)["type"] == "origin_not_allowed"
    assert "https://evil.example" in body(exc)["error"]
    assert backend.handshakes == []


def test_an_allowed_origin_is_relayed_with_its_origin_field(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=CORS_APP)]) as edge:
        assert echoes(edge.port, "/ws/chat", origin=Origin("https://app.example"))
    assert backend.handshakes[0].header("Origin") == ["https://app.example"]


def test_a_handshake_without_origin_is_relayed_under_a_cors_policy(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=CORS_APP)]) as edge:
        assert echoes(edge.port, "/ws/chat")


def test_the_null_origin_of_sandboxed_pages_is_refused(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port, policies=CORS_APP)]) as edge:
        exc = refusal(edge.port, "/ws/chat", origin=Origin("null"))
    assert body(exc)["type"] == "origin_not_allowed"


def test_without_a_cors_policy_any_origin_is_relayed(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port)]) as edge:
        assert echoes(edge.port, "/ws/chat", origin=Origin("https://evil.example"))


def test_the_gateway_wide_cors_policy_checks_origins_on_a_route_without_its_own(backend: WebSocketBackend) -> None:
    with edge_with([ws_route("chat", "/ws/chat", backend.port)], settings=CORS_APP) as edge:
        exc = refusal(edge.port, "/ws/chat", origin=Origin("https://evil.example"))
    assert body(exc)["type"] == "origin_not_allowed"


def test_a_wildcard_cors_policy_lets_every_origin_in(backend: WebSocketBackend) -> None:
    route = ws_route("chat", "/ws/chat", backend.port, policies={"cors": {"origins": ["*"]}})
    with edge_with([route]) as edge:
        assert echoes(edge.port, "/ws/chat", origin=Origin("https://evil.example"))


# Head limits and broken blocks


def test_a_handshake_with_too_many_header_fields_gets_431(backend: WebSocketBackend) -> None:
    route = ws_route("chat", "/ws/chat", backend.port, policies={"limits": {"max_header_count": 12}})
    with edge_with([route]) as edge:
        exc = refusal(edge.port, "/ws/chat", additional_headers=[(f"x-extra-{i}", "1") for i in range(12)])
    assert exc.response.status_code == 431
    assert body(exc)["type"] == "header_fields_too_large"
    assert backend.handshakes == []


def test_a_route_whose_guard_blocks_do_not_compile_answers_503_and_never_opens(backend: WebSocketBackend) -> None:
    route = ws_route("chat", "/ws/chat", backend.port, policies={"ip_rules": {"allow": ["not-an-address"]}})
    with edge_with([route]) as edge:
        exc = refusal(edge.port, "/ws/chat")
    assert exc.response.status_code == 503
    assert body(exc)["type"] == "route_misconfigured"
    assert backend.handshakes == []


# The client address behind trusted proxies (in process: the listener cannot fake a peer address)


def _handshake(app: WebSocketProxy, peer: str, forwarded_for: str) -> int:
    """Runs one handshake through the app and returns the HTTP status it refused with."""
    scope = {
        "type": "websocket", "path": "/ws/chat", "raw_path": b"/ws/chat", "query_string": b"", "scheme": "ws",
        "headers": [(b"host", b"gateway.test"), (b"x-forwarded-for", forwarded_for.encode())],
        "client": (peer, 40000), "subprotocols": [], "extensions": {"websocket.http.response": {}},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return int(sent[0]["status"])


def _app_behind_proxy(policies: dict[str, Any]) -> WebSocketProxy:
    state = LiveTable()
    state.install(RouteTable([ws_route("chat", "/ws/chat", refused_port(), policies=policies)], version=1))
    return WebSocketProxy(DataPlane(ProxyOptions(state=state, access_log=False,
                                                 trusted_proxies=(ipaddress.ip_network("10.0.0.0/8"),))))


def test_ip_rules_see_the_address_a_trusted_proxy_forwarded() -> None:
    app = _app_behind_proxy({"ip_rules": {"deny": ["203.0.113.5"]}})
    assert _handshake(app, "10.0.0.1", "203.0.113.5") == 403


def test_ip_rules_ignore_x_forwarded_for_from_an_untrusted_peer() -> None:
    app = _app_behind_proxy({"ip_rules": {"allow": ["203.0.113.5"]}})
    # A forged entry does not get a client past the allow list: its own address is checked.
    assert _handshake(app, "192.0.2.1", "203.0.113.5") == 403


def test_an_allowed_client_behind_a_trusted_proxy_reaches_the_backend() -> None:
    app = _app_behind_proxy({"ip_rules": {"allow": ["203.0.113.5"]}})
    assert _handshake(app, "10.0.0.1", "203.0.113.5") == 502  # past the guards, to the backend that refuses


# The table's plan


def plan_of(table: RouteTable) -> Any:
    return build_plan(table, AccessControl(), Balancing())


def test_a_new_table_recompiles_the_guards() -> None:
    route_spec = ws_route("chat", "/ws/chat", refused_port())
    first = RouteTable([route_spec], version=1)
    second = RouteTable([route_spec], version=2, settings=CORS_APP)
    assert plan_of(first).routes[route_spec.id].guards.cors is None
    assert plan_of(second).routes[route_spec.id].guards.cors is not None


def test_a_bad_gateway_wide_block_refuses_every_route_that_uses_it() -> None:
    route_spec = ws_route("chat", "/ws/chat", refused_port())
    table = RouteTable([route_spec], version=1, settings={"cors": {"origins": ["not an origin"]}})
    plan = plan_of(table)
    scope = {"headers": [], "path": "/ws/chat", "raw_path": b"/ws/chat", "query_string": b""}
    with pytest.raises(GuardsMisconfigured):
        check_handshake(plan.routes[route_spec.id].guards, "chat", scope, "10.0.0.1")
    with pytest.raises(GuardsMisconfigured):
        check_handshake(plan.unrouted_guards, None, scope, "10.0.0.1")
