"""The backend health list: every backend of every route, with its active state (probes) where it has a
health check and its passive state (circuit breaker, recent errors, failed connections) for all."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from protocols.recorder import Totals
from routes.health.models import BackendHealth, HealthState
from routes.models import Backend
from routes.services import save_route
from routes.snapshot import health_map
from tests.metrics.passive import gateway_files, report_breakers, serve  # noqa: F401
from tests.routes.conftest import PASSWORD

LIST_URL = reverse("admin:routes_backendhealth_changelist")


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def shop(*backends: dict) -> None:
    save_route({"name": "shop", "external_path": "/shop", "methods": ["GET"], "backends": list(backends)},
               actor=None, source="test")


def row_of(page: str, url: str) -> str:
    """The list's row of the backend with this URL."""
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        if f">{url}<" in row:
            return row
    raise AssertionError(f"no row for {url} in the list")


@pytest.mark.django_db
def test_the_list_names_a_backend_without_a_health_check_path(admin_client):
    shop({"host": "http://10.0.0.1", "port": 80, "health_check_path": "/h"}, {"host": "http://10.0.0.2", "port": 80})
    page = admin_client.get(LIST_URL).content.decode()
    assert "not probed" in row_of(page, "http://10.0.0.1:80")
    assert "no health-check path" in row_of(page, "http://10.0.0.2:80")


@pytest.mark.django_db
def test_listing_a_backend_still_sends_it_traffic(admin_client):
    shop({"host": "http://10.0.0.2", "port": 80})
    admin_client.get(LIST_URL)
    backend = Backend.objects.get()
    assert BackendHealth.objects.get(pk=backend.pk).state == HealthState.UNKNOWN
    assert health_map().get(backend.pk, True) is True


@pytest.mark.django_db
def test_a_backend_without_a_check_shows_its_open_breaker_and_recent_5xx(admin_client, gateway_files):  # noqa: F811
    shop({"host": "http://10.0.0.2", "port": 80})
    opened = Totals(breaker_opens={("shop", "10.0.0.2:80"): 3})
    report_breakers(gateway_files, [("shop", "10.0.0.2:80", "open")], opened)
    serve("shop", "10.0.0.2:80", 12, errors=7)
    row = row_of(admin_client.get(LIST_URL).content.decode(), "http://10.0.0.2:80")
    assert ">open<" in row and "opened 3×" in row
    assert "12 requests" in row and "7 × 5xx" in row


@pytest.mark.django_db
def test_a_backend_shows_its_failed_connections_by_kind(admin_client, gateway_files):  # noqa: F811
    shop({"host": "http://10.0.0.2", "port": 80})
    totals = Totals(upstream_errors={("10.0.0.2:80", "refused"): 6, ("10.0.0.2:80", "timeout"): 1})
    report_breakers(gateway_files, [("shop", "10.0.0.2:80", "closed")], totals)
    row = row_of(admin_client.get(LIST_URL).content.decode(), "http://10.0.0.2:80")
    assert ">closed<" in row and "refused 6 · timeout 1" in row


@pytest.mark.django_db
def test_a_backend_no_gateway_has_sent_traffic_says_so(admin_client, gateway_files):  # noqa: F811
    shop({"host": "http://10.0.0.2", "port": 80})
    row = row_of(admin_client.get(LIST_URL).content.decode(), "http://10.0.0.2:80")
    assert "no traffic yet" in row and "no traffic" in row and ">none<" in row


@pytest.mark.django_db
def test_a_backends_page_shows_its_passive_state(admin_client, gateway_files):  # noqa: F811
    shop({"host": "http://10.0.0.2", "port": 80})
    report_breakers(gateway_files, [("shop", "10.0.0.2:80", "half_open")])
    page = admin_client.get(reverse("admin:routes_backendhealth_change", args=[Backend.objects.get().pk]))
    text = page.content.decode()
    assert "Circuit breaker:" in text and ">half-open<" in text and "no health-check path" in text
