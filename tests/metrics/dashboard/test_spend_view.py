"""The dashboard's Spend view: its charts' places and the table of each consumer's LLM spend per model, rendered
by the admin from stored spend points; staff only."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.models import LlmSpendRawPoint
from metrics.queries import floor
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
SPEND = "/admin/metrics/dashboard/spend/"


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def stored(consumer: str, model: str, requests: int, micros: int, *, minutes_ago: int = 5) -> None:
    LlmSpendRawPoint.objects.create(start=floor(timezone.now() - timedelta(minutes=minutes_ago), 10), route="chat",
                                    model=model, consumer=consumer, source="test", requests=requests,
                                    input_tokens=100 * requests, output_tokens=10 * requests,
                                    cached_input_tokens=0, cost_micros=micros)


def rows(html: str, table: str = "spend-table") -> list[str]:
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return [" | ".join(re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>",
                                                                                  row, re.S))
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)][1:]


def test_the_table_lists_each_consumers_spend_per_model_most_expensive_first_with_the_total(admin_client):
    stored("alice", "gpt-4o", 2, 4300)
    stored("alice", "gpt-4o", 1, 2150, minutes_ago=20)
    stored("bob", "gpt-4o-mini", 5, 87)
    stored("bob", "gpt-4o", 1, 9_000_000, minutes_ago=120)  # outside the last hour
    html = admin_client.get(SPEND).content.decode()
    assert rows(html) == ["alice | gpt-4o | 3 | 300 | 0 | 30 | 0.00645",
                          "bob | gpt-4o-mini | 5 | 500 | 0 | 50 | 0.000087",
                          "total | 8 | 800 | 0 | 80 | 0.006537"]
    assert rows(admin_client.get(SPEND, {"range": 21600}).content.decode())[0] == "bob | gpt-4o | 1 | 100 | 0 | 10 | 9"


def test_the_page_has_a_chart_per_consumer_and_per_model_drawn_from_the_spend_api(admin_client):
    html = admin_client.get(SPEND).content.decode()
    assert 'id="chart-spend-by-consumer" data-by="consumer"' in html
    assert 'id="chart-spend-by-model" data-by="model"' in html
    assert 'data-spend-url="/api/metrics/llm/spend/"' in html and "metrics/spend.js" in html
    assert re.search(r'<a href="/admin/metrics/dashboard/spend/" class="active" data-view="spend">Spend</a>', html)


def test_a_range_without_llm_requests_says_so(admin_client):
    html = admin_client.get(SPEND).content.decode()
    assert 'id="spend-table-empty"' in html and "No LLM request in the last hour" in html


def test_every_dashboard_page_links_to_the_spend_view(admin_client):
    html = admin_client.get("/admin/metrics/dashboard/consumers/").content.decode()
    assert 'href="/admin/metrics/dashboard/spend/"' in html


def test_the_spend_view_is_for_staff_only(client, plain_user):
    assert client.get(SPEND).status_code == 302  # to the admin's login
    client.force_login(plain_user)
    assert client.get(SPEND).status_code == 302
