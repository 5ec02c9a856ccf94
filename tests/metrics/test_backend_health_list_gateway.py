"""The backend health list of a real gateway: real requests through its proxy open a backend's circuit breaker,
and its admin listener lists that backend (which has no health check) with the breaker open."""
from __future__ import annotations

import re
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from routes.services import save_route
from tests.metrics.test_backend_health_list import row_of
from tests.support.gateway import http, start_gateway
from tests.support.upstream import refused_port

pytestmark = pytest.mark.django_db(transaction=True)
LIST_URL = reverse("admin:routes_backendhealth_changelist")
PASSWORD = "an-operator-password-9"


@pytest.fixture
def fast_password_hashing():
    """Overrides the suite's fast hasher: the gateway process must verify this password with the real one."""


def admin_session(admin_url: str, username: str, password: str) -> urllib.request.OpenerDirector:
    """A logged-in session on a gateway's admin listener, through its login form (CSRF token included)."""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    form = opener.open(f"{admin_url}/admin/login/", timeout=10).read().decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, "no CSRF token on the login form"
    data = urllib.parse.urlencode({"csrfmiddlewaretoken": token.group(1), "username": username,
                                   "password": password, "next": "/admin/"}).encode()
    opener.open(urllib.request.Request(f"{admin_url}/admin/login/", data=data,
                                       headers={"Referer": f"{admin_url}/admin/login/"}), timeout=10)
    assert any(cookie.name == "sessionid" for cookie in jar), "the login did not succeed"
    return opener


def test_a_breaker_opened_by_real_traffic_shows_in_the_list_of_a_backend_without_a_check(tmp_path):
    get_user_model().objects.create_superuser(username="ops", password=PASSWORD)
    dead = refused_port()
    save_route({"name": "shop", "external_path": "/shop", "methods": ["GET"],
                "backends": [{"host": "http://127.0.0.1", "port": dead}]}, actor=None, source="test")
    gateway = start_gateway(tmp_path)
    try:
        gateway.wait_version(1)
        statuses = [http("GET", gateway.url + "/shop", headers={"Connection": "close"})[0] for _ in range(8)]
        assert statuses[0] == 502 and statuses[-1] == 503  # refused, then the open breaker lets nothing through
        session = admin_session(gateway.admin_url, "ops", PASSWORD)
        row = ""
        for _ in range(50):  # each worker reports its breakers about once a second
            page = session.open(gateway.admin_url + LIST_URL, timeout=10).read().decode()
            row = row_of(page, f"http://127.0.0.1:{dead}")
            if ">open<" in row:
                break
            time.sleep(0.2)
        assert ">open<" in row and "no health-check path" in row
        assert re.search(r"refused \d+", row)
    finally:
        assert gateway.stop() == 0
