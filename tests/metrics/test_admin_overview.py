"""The admin home as the gateway's overview: routes with traffic, 5xx, p99 and backend health, and the links."""
from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from metrics import rollups
from metrics.models import RollupPoint
from routes.health.models import BackendHealth, HealthState, Override
from routes.models import Backend
from routes.services import save_route
from tests.metrics.passive import gateway_files, report_breakers, serve  # noqa: F401
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
HOME = reverse("admin:index")


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def route(name: str, *backends: dict) -> None:
    save_route({"name": name, "external_path": f"/{name}", "methods": ["GET"], "backends": list(backends)},
               actor=None, source="test")


def row_of(page: str, name: str) -> str:
    found = re.search(rf'<tr data-route="{name}">(.*?)</tr>', page, re.S)
    assert found, f"no overview row for route {name}"
    return found.group(1)


def test_each_route_shows_its_requests_5xx_share_and_p99_linked_to_its_dashboard_page(admin_client):
    route("users", {"host": "http://10.0.0.5", "port": 8080})
    serve("users", "10.0.0.5:8080", 40, errors=10, seconds=0.02)
    page = admin_client.get(HOME).content.decode()
    row = row_of(page, "users")
    assert 'href="/admin/metrics/dashboard/route/users/"' in row
    cells = re.findall(r'<td class="number">(.*?)</td>', row)
    assert cells[0] == "40" and cells[1] == "25%"
    assert cells[2].endswith(" ms") and 10 <= int(cells[2].split()[0]) <= 25  # p99 of 20 ms requests


def test_each_route_counts_its_backends_up_down_unknown_and_with_an_open_breaker(admin_client, gateway_files):  # noqa: F811
    route("shop", {"host": "http://10.0.0.1", "port": 80, "health_check_path": "/h"},
          {"host": "http://10.0.0.2", "port": 80, "health_check_path": "/h"},
          {"host": "http://10.0.0.3", "port": 80}, {"host": "http://10.0.0.4", "port": 80})
    first, second = Backend.objects.order_by("id")[:2]
    BackendHealth.objects.update_or_create(backend=first, defaults={"state": HealthState.HEALTHY})
    BackendHealth.objects.update_or_create(backend=second,
        defaults={"state": HealthState.UNHEALTHY, "reason": "status 503"})
    report_breakers(gateway_files, [("shop", "10.0.0.3:80", "open"), ("shop", "10.0.0.4:80", "closed")])
    row = row_of(admin_client.get(HOME).content.decode(), "shop")
    for text in ("1 down", "1 breaker open", "1 up", "1 unknown"):
        assert text in row
    assert "http://10.0.0.2:80: health checks fail (status 503)" in row
    assert "http://10.0.0.3:80: circuit breaker open" in row


def test_a_backend_forced_down_is_counted_down(admin_client):
    route("shop", {"host": "http://10.0.0.1", "port": 80})
    BackendHealth.objects.update_or_create(backend=Backend.objects.get(), defaults={"override": Override.DOWN})
    row = row_of(admin_client.get(HOME).content.decode(), "shop")
    assert "1 down" in row and "forced down" in row


def test_routes_with_problems_come_first(admin_client, gateway_files):  # noqa: F811
    route("aaa", {"host": "http://10.0.0.1", "port": 80})
    route("zzz", {"host": "http://10.0.0.2", "port": 80})
    report_breakers(gateway_files, [("zzz", "10.0.0.2:80", "open")])
    page = admin_client.get(HOME).content.decode()
    assert page.index('data-route="zzz"') < page.index('data-route="aaa"')


def test_the_home_links_to_the_dashboard_the_recommendations_the_backend_health_and_the_audit(admin_client):
    route("users", {"host": "http://10.0.0.5", "port": 8080})
    page = admin_client.get(HOME).content.decode()
    assert re.search(r'id="metrics-dashboard-link" href="/admin/metrics/dashboard/"', page)
    assert re.search(r'id="recommendations-link" href="/admin/metrics/dashboard/#recommendations"', page)
    assert re.search(r'id="backend-health-link" href="/admin/routes/backendhealth/"', page)
    assert re.search(r'id="audit-link" href="/admin/routes/auditentry/"', page)


def test_the_recommendations_link_lands_on_the_dashboards_recommendations(admin_client):
    route("users", {"host": "http://10.0.0.5", "port": 8080})
    for _ in range(2):  # with nothing to recommend, then with a route failing half its requests
        dashboard = admin_client.get("/admin/metrics/dashboard/").content.decode()
        assert re.search(r'<section[^>]* id="recommendations"', dashboard)
        serve("users", "10.0.0.5:8080", 40, errors=20)
    assert "route users: 5xx at 50%" in dashboard


def test_the_recommendations_are_shown_on_the_home(admin_client):
    route("users", {"host": "http://10.0.0.5", "port": 8080})
    serve("users", "10.0.0.5:8080", 40, errors=20)
    page = admin_client.get(HOME).content.decode()
    assert "route users: 5xx at 50% over the last 15 min" in page


def test_the_apps_are_still_listed_below_the_overview(admin_client):
    page = admin_client.get(HOME).content.decode()
    assert page.index('id="content-main"') < page.index('id="gateway-overview"') < page.index('class="app-routes')
    assert 'href="/admin/routes/route/"' in page and 'href="/admin/routes/backendhealth/"' in page


def test_a_new_install_says_there_are_no_routes_and_how_to_add_one(admin_client):
    page = admin_client.get(HOME).content.decode()
    assert 'id="overview-empty"' in page and "No routes yet" in page
    assert 'href="/admin/routes/route/add/"' in page and "manage.py importconfig" in page
    assert 'id="overview-routes"' not in page


def test_a_route_without_traffic_says_so(admin_client):
    route("quiet", {"host": "http://10.0.0.5", "port": 8080})
    row = row_of(admin_client.get(HOME).content.decode(), "quiet")
    assert "no traffic" in row and "1 unknown" in row


def test_the_overview_costs_as_many_queries_for_thirty_routes_as_for_one(admin_client):
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            page = admin_client.get(HOME).content.decode()
        assert 'data-route="r0"' in page  # the overview was built
        return len(captured)

    route("r0", {"host": "http://10.0.0.5", "port": 8080, "health_check_path": "/h"})
    serve("r0", "10.0.0.5:8080", 5)
    one = queries()
    for index in range(1, 30):
        route(f"r{index}", {"host": f"http://10.0.1.{index}", "port": 8080, "health_check_path": "/h"},
              {"host": f"http://10.0.2.{index}", "port": 8080})
        serve(f"r{index}", f"10.0.1.{index}:8080", 5)
    assert queries() == one
    assert "5 more route(s) without problems" in admin_client.get(HOME).content.decode()  # 25 are listed


def test_a_viewer_on_a_new_install_is_told_to_ask_an_operator(client):
    get_user_model().objects.create_user("carol", password=PASSWORD, is_staff=True)  # staff without a role: viewer
    assert client.login(username="carol", password=PASSWORD)
    page = client.get(HOME).content.decode()
    assert "No routes yet" in page and "Ask an operator to add one." in page
    assert 'href="/admin/routes/route/add/"' not in page


def test_the_sidebar_shows_the_latest_configuration_changes_from_the_audit_trail(admin_client, staff_user):
    save_route({"name": "users", "external_path": "/users", "methods": ["GET"],
                "backends": [{"host": "http://10.0.0.5", "port": 8080}]}, actor=staff_user, source="api")
    page = admin_client.get(HOME).content.decode()
    module = page[page.index('id="latest-changes-module"'):]
    assert "Created route users" in module and "alice, api" in module
    assert 'href="/admin/routes/auditentry/"' in module


def test_the_old_points_outside_the_window_are_not_counted(admin_client):
    route("users", {"host": "http://10.0.0.5", "port": 8080})
    serve("users", "10.0.0.5:8080", 3, at=datetime(2020, 1, 1, tzinfo=UTC).timestamp())
    assert "no traffic" in row_of(admin_client.get(HOME).content.decode(), "users")


def test_minutes_already_rolled_up_and_raw_points_after_them_are_each_counted_once(admin_client):
    route("users", {"host": "http://10.0.0.5", "port": 8080})
    serve("users", "10.0.0.5:8080", 10, at=time.time() - 1800)
    rollups.rollup("1m")
    assert RollupPoint.objects.filter(resolution="1m").exists()
    serve("users", "10.0.0.5:8080", 5)
    row = row_of(admin_client.get(HOME).content.decode(), "users")
    assert re.findall(r'<td class="number">(.*?)</td>', row)[0] == "15"
