"""A consumer's traffic through a real `runproxy`, from its API key to the stored history and the API: the gateway
writes the points (to the database, or to Redis in the scaled-out suite, where the rollup task ingests them), the
rollup fills the minutes, and /api/metrics/ answers per consumer."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from metrics import timeseries
from metrics.models import ConsumerRawPoint, ConsumerRollupPoint
from routes.consumers import services
from routes.models import ConfigState
from routes.services import save_route
from tests.support.gateway import http, start_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)
REQUESTS = 6


def test_a_consumers_requests_land_in_its_history_and_its_access_log_lines(tmp_path, api):
    billing = services.save_consumer({"name": "billing"}, actor=None, source="test")
    key = services.issue_key(billing, actor=None, source="test").key
    with UpstreamServer() as upstream:
        save_route({"name": "echo", "external_path": "/echo", "methods": ["GET"], "auth": "key",
                    "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
        gateway = start_gateway(tmp_path, extra_env={"RUSTA_METRICS_FLUSH_INTERVAL": "0.5"})
        try:
            gateway.wait_version(ConfigState.objects.get(pk=1).version)
            started = timezone.now()
            for _ in range(REQUESTS):
                assert http("GET", gateway.url + "/echo", headers={"X-API-Key": key})[0] == 200
            assert http("GET", gateway.url + "/echo")[0] == 401  # no key, no consumer
        finally:
            assert gateway.stop() == 0  # a clean stop writes the last points
    lines = [line for line in gateway.access_lines() if line.get("route") == "echo"]
    assert [line["consumer"] for line in lines] == ["billing"] * REQUESTS + [None]

    later = timezone.now() + timedelta(minutes=6)  # every bucket of the traffic is final by then
    timeseries.ingest_and_rollup(later)  # with Redis, ingests the gateway's points first
    assert sum(ConsumerRawPoint.objects.values_list("count", flat=True)) == REQUESTS
    assert sum(ConsumerRollupPoint.objects.filter(resolution="1m").values_list("count", flat=True)) == REQUESTS
    if settings.REDIS_URL:
        assert set(ConsumerRawPoint.objects.values_list("source", flat=True)) == {"redis"}

    span = {"start": (started - timedelta(minutes=5)).isoformat(),
            "end": (started + timedelta(minutes=5)).isoformat()}
    for interval in ("10s", "1m"):
        body = api.get("/api/metrics/history/", {"name": "requests", "interval": interval, "consumer": "billing",
                                                 **span}).json()
        assert sum(point["count"] for point in body["points"]) == REQUESTS, interval
    (row,) = api.get("/api/metrics/consumers/", span).json()["consumers"]
    assert (row["consumer"], row["requests"], row["errors_4xx"], row["errors_5xx"]) == ("billing", REQUESTS, 0, 0)
    assert [(top["route"], top["requests"]) for top in row["top_routes"]] == [("echo", REQUESTS)]
    assert row["p95"] is not None
