"""Verdicts and personalized limits written to the database, applied by a real `runproxy` (its flusher reads them
back about every second): a block within two refreshes and gone once lifted, nothing on a shadow route, a lowered
and a personalized limit on the route's own rate-limit store (Redis in the scaled-out suite)."""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from metrics.models import ClientLimit, Verdict
from routes.import_export import import_config
from routes.models import ConfigState
from tests.support.gateway import Gateway, http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
MALLORY, ALICE, PROBE = "203.0.113.66", "198.51.100.7", "192.0.2.1"
REFRESH_S = 1.0  # metrics.abuse.flush.AbuseFlush's refresh_every, as the worker runs it
Answer = tuple[int, dict[str, str], bytes]


def route(name: str, path: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "external_path": path, "methods": ["GET"],
            "backends": [{"host": "http://127.0.0.1", "port": port}], **extra}


def verdict(route_name: str, client: str, action: str = "block", factor: float | None = None) -> Verdict:
    now = timezone.now()
    return Verdict.objects.create(
        route=route_name, client=client, kind="credential_stuffing", score=12.0, model_version="test",
        action=action, factor=factor,
        features=[{"name": "auth_failures", "value": 48, "baseline": 0.5, "population": 1.0, "score": 12.0}],
        window_start=now - timedelta(seconds=10), window_end=now, expires_at=now + timedelta(minutes=10))


def get(gateway: Gateway, path: str, address: str) -> Answer:
    status, headers, body = http("GET", gateway.url + path, headers={"X-Forwarded-For": address})
    return status, {name.lower(): value for name, value in headers.items()}, body


def kind(answer: Answer) -> str | None:
    return json.loads(answer[2]).get("type") if answer[0] >= 400 else None


def wait_for(condition: Callable[[], bool], timeout: float) -> float:
    """Seconds until `condition` held; fails past `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if condition():
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s")


def scraped(gateway: Gateway, line: str) -> str:
    """/metrics once it shows `line` (each worker writes its figures every second)."""
    text = ""

    def shows() -> bool:
        nonlocal text
        text = http("GET", gateway.admin_url + "/metrics")[2].decode()
        return line in text

    wait_for(shows, timeout=10)
    return text


@pytest.fixture
def upstream() -> Iterator[UpstreamServer]:
    with UpstreamServer() as server:
        yield server


@pytest.fixture
def gateway(tmp_path, upstream) -> Iterator[Gateway]:
    # A prefix of its own per test: a Redis store keeps counters across tests for the window's minute.
    limit = {"limit": 10, "window_s": 60, "store": "redis", "key_prefix": uuid.uuid4().hex}
    import_config({"version": 1, "routers": [
        route("orders", "/orders", upstream.port, abuse={"mode": "enforce"}),
        route("mirror", "/mirror", upstream.port, abuse={"mode": "shadow"}),
        route("lowered", "/lowered", upstream.port, abuse={"mode": "enforce", "action": "lower"}, rate_limit=limit),
        route("personal", "/personal", upstream.port, abuse={"mode": "enforce", "personalized_limits": True},
              rate_limit=limit),
    ]}, actor=None, source="test")
    running = start_gateway(tmp_path, extra_env={"RUSTA_TRUSTED_PROXIES": "127.0.0.1"})
    try:
        running.wait_version(ConfigState.objects.get(pk=1).version)
        yield running
    finally:
        assert running.stop() == 0


def test_a_block_verdict_refuses_its_client_within_two_refreshes_until_it_is_lifted(gateway):
    assert get(gateway, "/orders", MALLORY)[0] == 200
    blocked = verdict("orders", f"ip:{MALLORY}")
    took = wait_for(lambda: get(gateway, "/orders", MALLORY)[0] == 429, timeout=10)
    assert took <= 2 * REFRESH_S + 1.0  # two refreshes, and the flusher's tick they ride on

    status, headers, body = get(gateway, "/orders", MALLORY)
    answer = json.loads(body)
    assert (status, answer["type"], answer["verdict_id"]) == (429, "client_blocked", blocked.pk)
    assert answer["verdict"] == f"/api/verdicts/{blocked.pk}/"
    assert answer["reason"]["kind"] == "credential_stuffing" and answer["reason"]["feature"] == "auth_failures"
    assert headers["x-rusta-verdict"] == str(blocked.pk)
    assert 590 <= int(headers["retry-after"]) <= 600
    assert get(gateway, "/orders", ALICE)[0] == 200

    Verdict.objects.filter(pk=blocked.pk).update(lifted_at=timezone.now(), lifted_by="ops")
    wait_for(lambda: get(gateway, "/orders", MALLORY)[0] == 200, timeout=2 * REFRESH_S + 1.0)
    assert scraped(gateway, 'rusta_abuse_actions_total{route="orders",action="block"}')


def test_a_shadow_route_answers_a_client_with_a_block_verdict_as_before(gateway):
    verdict("orders", f"ip:{MALLORY}")
    verdict("mirror", f"ip:{MALLORY}")
    wait_for(lambda: get(gateway, "/orders", MALLORY)[0] == 429, timeout=10)  # the table has both verdicts now
    assert [get(gateway, "/mirror", MALLORY)[0] for _ in range(5)] == [200] * 5


def test_a_lowered_limit_and_a_personalized_limit_apply_on_the_routes_rate_limit(gateway):
    lowered = verdict("lowered", f"ip:{MALLORY}", action="lower", factor=0.2)
    ClientLimit.objects.create(route="personal", client=f"ip:{MALLORY}", limit=3, window_s=60, learned_from=40)
    verdict("orders", f"ip:{PROBE}")  # read in the same table: once the probe is blocked, all of it applies
    wait_for(lambda: get(gateway, "/orders", PROBE)[0] == 429, timeout=10)

    mallory = [get(gateway, "/lowered", MALLORY) for _ in range(4)]
    assert [answer[0] for answer in mallory] == [200, 200, 429, 429]  # 0.2 x 10
    assert kind(mallory[2]) == "rate_limited"
    assert mallory[2][1]["x-rusta-verdict"] == str(lowered.pk)
    assert f"by verdict {lowered.pk}" in json.loads(mallory[2][2])["reason"]
    assert [get(gateway, "/lowered", ALICE)[0] for _ in range(10)] == [200] * 10

    personal = [get(gateway, "/personal", MALLORY) for _ in range(4)]
    assert [answer[0] for answer in personal] == [200, 200, 200, 429]
    assert "personalized limit of 3 per 60 s" in json.loads(personal[3][2])["reason"]
    assert [get(gateway, "/personal", ALICE)[0] for _ in range(10)] == [200] * 10

    metrics = scraped(gateway, 'rusta_abuse_actions_total{route="lowered",action="lower"} 2')
    assert 'rusta_abuse_actions_total{route="personal",action="personalized"} 1' in metrics
    assert 'rusta_rate_limited_total{route="lowered"} 2' in metrics
