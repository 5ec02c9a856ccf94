"""Every admin page warns staff users, with what to run, while the background work has not reported."""
from __future__ import annotations

import time

import pytest
from django.urls import reverse

from metrics.background import Heartbeat
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
BANNER = 'id="rusta-background-missing"'
PAGES = ["admin:index", "admin:routes_route_changelist", "admin:routes_backendhealth_changelist",
         "admin:routes_route_add"]


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


@pytest.fixture
def stale_after(settings):
    """Background work counts as missing 5 s after its last report."""
    settings.RUSTA_BACKGROUND_STALE_AFTER = 5.0
    return 5.0


def beat(seconds_ago: float) -> None:
    Heartbeat(clock=lambda: time.time() - seconds_ago).beat()


@pytest.mark.parametrize("page", PAGES)
def test_every_admin_page_shows_the_banner_while_the_background_work_is_missing(admin_client, stale_after, page):
    beat(seconds_ago=600)
    body = admin_client.get(reverse(page)).content.decode()
    assert BANNER in body
    assert "last reported 600 s ago" in body
    assert "celery -A rusta worker --beat" in body


def test_the_dashboard_shows_the_banner_too(admin_client, stale_after):
    beat(seconds_ago=600)
    assert BANNER in admin_client.get(reverse("metrics-dashboard:overview")).content.decode()


def test_no_banner_while_the_background_work_reports(admin_client, stale_after):
    beat(seconds_ago=1)
    assert BANNER not in admin_client.get(reverse("admin:index")).content.decode()


def test_visitors_who_are_not_logged_in_are_not_told(client, stale_after):
    beat(seconds_ago=600)
    assert BANNER not in client.get(reverse("admin:login")).content.decode()
