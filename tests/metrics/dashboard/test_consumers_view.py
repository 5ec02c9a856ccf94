"""The dashboard's Consumers view and a consumer's page, rendered by the admin from stored consumer points."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.models import ConsumerRawPoint
from metrics.queries import floor
from protocols.recorder import BUCKETS, LATENCY_BOUNDS
from routes.consumers import services
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
CONSUMERS = "/admin/metrics/dashboard/consumers/"


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def stored(consumer: str, route: str, count: int, *, minutes_ago: int = 5, errors_5xx: int = 0) -> None:
    buckets = [0] * BUCKETS
    buckets[LATENCY_BOUNDS.index(0.025)] = count  # (15 ms, 25 ms]
    ConsumerRawPoint.objects.create(start=floor(timezone.now() - timedelta(minutes=minutes_ago), 10),
                                    consumer=consumer, route=route, source="test", count=count,
                                    errors_5xx=errors_5xx, duration_sum=0.02 * count, duration_min=0.016,
                                    duration_max=0.024, buckets=buckets)


def rows(html: str) -> list[str]:
    """Each table row's cells as text."""
    body = html.split('id="consumer-table"', 1)[1].split("</table>", 1)[0]
    return [" | ".join(re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row,
                                                                                  re.S))
            for row in re.findall(r"<tr data-consumer[^>]*>(.*?)</tr>", body, re.S)]


def test_the_table_shows_each_consumer_busiest_first_with_its_figures_and_top_routes(admin_client):
    services.save_consumer({"name": "billing"}, actor=None, source="test")
    services.save_consumer({"name": "reports"}, actor=None, source="test")
    stored("billing", "users", 30, errors_5xx=3)
    stored("billing", "orders", 10)
    stored("search", "users", 50, minutes_ago=30)
    response = admin_client.get(CONSUMERS)
    assert response.status_code == 200
    html = response.content.decode()
    table = rows(html)
    assert table[0].startswith("search (no longer configured) | 50")
    assert table[1].split(" | ")[:6] == ["billing", "40", "0.011", "0", "3", "7.5%"]
    assert table[1].split(" | ")[6] == "24 ms"  # p95 inside (15 ms, 25 ms], no more than the slowest (24 ms)
    assert table[1].endswith("users (30), orders (10)")
    assert 'href="/admin/metrics/dashboard/consumer/billing/?range=3600"' in html
    assert 'href="/admin/metrics/dashboard/route/orders/?range=3600"' in html
    assert re.search(r'id="consumers-silent">No request in the last hour from: <a [^>]*>reports</a>', html)


def test_the_chosen_range_decides_who_is_listed(admin_client):
    stored("search", "users", 50, minutes_ago=30)
    html = admin_client.get(CONSUMERS, {"range": "900"}).content.decode()
    assert 'id="consumer-table"' not in html
    assert "No consumer made a request in the last 15 minutes." in html


def test_the_dashboard_navigation_links_to_the_consumers_view(admin_client):
    html = admin_client.get("/admin/metrics/dashboard/").content.decode()
    assert re.search(r'<a href="/admin/metrics/dashboard/consumers/"[^>]*>Consumers</a>', html)


def test_a_consumers_page_draws_its_requests_errors_and_latency_from_its_history(admin_client):
    response = admin_client.get("/admin/metrics/dashboard/consumer/billing/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-consumer="billing"' in html
    charts = json.loads(re.search(r'<script id="metrics-charts" type="application/json">(.*?)</script>', html,
                                  re.S).group(1))
    assert [(c["name"], c["fields"]) for c in charts] == [
        ("requests", ["rate"]), ("errors", ["errors_4xx", "errors_5xx"]), ("latency", ["p50", "p95", "p99"])]
    assert 'id="live-status"' not in html  # no live figures per consumer


def test_the_consumer_admin_page_links_to_its_traffic(admin_client):
    consumer = services.save_consumer({"name": "billing"}, actor=None, source="test")
    html = admin_client.get(f"/admin/routes/consumer/{consumer.pk}/change/").content.decode()
    assert 'href="/admin/metrics/dashboard/consumer/billing/" id="rusta-consumer-traffic-link"' in html


def test_the_consumers_view_is_for_staff_only(client, plain_user):
    client.force_login(plain_user)
    response = client.get(CONSUMERS)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
