"""ProxyApp names the consumer of each request to the recorder and the access log: a real proxy on loopback, a real
backend, API keys and a JWT that resolve to consumers through the table's directory."""
from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from protocols.auth.consumers import DIRECTORY_SETTING, ConsumerDirectory, ConsumerIdentity, KeyGrant, key_digest
from protocols.http import AccessLog
from protocols.recorder import Recorder
from tests.protocols.auth.tokens import SECRET, claims, with_pyjwt
from tests.support.proxy import ProxyServer, route
from tests.support.upstream import UpstreamServer

KEY = "rk_billing-key-0123456789abcdefghij"
SEARCH_KEY = "rk_search-key-0123456789abcdefghijk"


@pytest.fixture
def served() -> Iterator[tuple[ProxyServer, Recorder, io.StringIO]]:
    directory = ConsumerDirectory(
        keys={key_digest(KEY.encode()): KeyGrant(ConsumerIdentity("billing")),
              key_digest(SEARCH_KEY.encode()): KeyGrant(ConsumerIdentity("search"))},
        subjects={"alice": ConsumerIdentity("billing")})
    limit = {"limit": 1, "window_s": 60, "scope": ["consumer"]}
    recorder, stream = Recorder(), io.StringIO()
    with UpstreamServer() as upstream:
        port = upstream.port
        routes = [route("keys", "/keys", port, auth="key"), route("either", "/either", port, auth="either"),
                  route("limited", "/limited", port, auth="key", policies={"rate_limit": limit}),
                  route("open", "/open", port)]
        with ProxyServer(routes, AccessLog(stream), recorder=recorder,
                         settings={"jwt": {"secret": SECRET}, DIRECTORY_SETTING: directory}) as proxy:
            yield proxy, recorder, stream


def counts(recorder: Recorder) -> dict[tuple[str, str, int], int]:
    return {key: cell[0] for key, cell in recorder.take_consumer_window().items()}


def test_requests_with_a_key_or_a_consumers_jwt_are_counted_for_that_consumer(served):
    proxy, recorder, _ = served
    token = with_pyjwt(claims(sub="alice", aud=None), SECRET, "HS256").decode()
    assert proxy.call("GET", "/keys", [("X-API-Key", KEY)]).status == 200
    assert proxy.call("GET", "/either", [("Authorization", f"Bearer {token}")]).status == 200
    assert proxy.call("GET", "/keys", [("X-API-Key", SEARCH_KEY)]).status == 200
    assert counts(recorder) == {("billing", "keys", 200): 1, ("billing", "either", 200): 1,
                                ("search", "keys", 200): 1}


def test_a_rate_limited_request_is_the_consumers_429(served):
    proxy, recorder, _ = served
    statuses = [proxy.call("GET", "/limited", [("X-API-Key", KEY)]).status for _ in range(2)]
    assert statuses == [200, 429]
    assert counts(recorder) == {("billing", "limited", 200): 1, ("billing", "limited", 429): 1}


def test_requests_without_a_consumer_are_not_counted_for_any(served):
    proxy, recorder, _ = served
    stranger = with_pyjwt(claims(sub="stranger", aud=None), SECRET, "HS256").decode()
    assert proxy.call("GET", "/open", [("X-API-Key", KEY)]).status == 200  # a route without auth reads no key
    assert proxy.call("GET", "/either", [("Authorization", f"Bearer {stranger}")]).status == 200
    assert proxy.call("GET", "/keys", [("X-API-Key", "rk_nobody-knows-this-one")]).status == 401
    assert counts(recorder) == {}
    assert sum(cell[0] for cell in recorder.take_window().values()) == 3


def test_the_access_log_names_the_consumer_or_null(served):
    proxy, _, stream = served
    proxy.call("GET", "/keys", [("X-API-Key", KEY)])
    proxy.call("GET", "/open")
    proxy.app.access_log.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["route"], line["consumer"]) for line in lines] == [("keys", "billing"), ("open", None)]
