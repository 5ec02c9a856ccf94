"""The admin's Advice page: viewers see the evidence but no Apply button and cannot apply; stale advice is
refused with its reason."""
from __future__ import annotations

import pytest
from django.test import Client

from metrics.api.advice import advice_document
from routes.models import Route
from routes.services import save_route
from tests.routes.conftest import PASSWORD
from tests.support.advice_series import hourly, route
from tests.support.users import role_user

pytestmark = pytest.mark.django_db
PAGE = "/admin/metrics/dashboard/advice/"


@pytest.fixture
def slow_backend():
    route("users", (8080, 8081), read_timeout_ms=1000)
    hourly("users", "10.0.0.5:8080", 24, 300, latency=0.02)
    hourly("users", "10.0.0.5:8081", 24, 300, latency=0.2)


def signed_in(role: str) -> Client:
    client = Client()
    client.force_login(role_user(role, role))
    return client


def advice_id() -> str:
    [finding] = advice_document(llm="off")["findings"]
    return finding["id"]


def test_a_viewer_sees_the_evidence_and_diff_without_an_apply_button(slow_backend):
    page = signed_in("viewer").get(PAGE).content.decode()
    assert "answers with a p50 of 200.0 ms" in page and "hours_compared" in page
    assert "latency_aware" in page and "advice-diff" in page
    assert "advice-apply" not in page


def test_a_viewer_cannot_apply(slow_backend):
    client = signed_in("viewer")
    response = client.post(f"{PAGE}{advice_id()}/apply/")
    assert response.status_code == 403
    assert Route.objects.get(name="users").load_balancing_strategy == "round_robin"


def test_an_operator_is_told_why_stale_advice_was_not_applied(slow_backend):
    client = signed_in("operator")
    stale = advice_id()
    save_route({"read_timeout_ms": 1500}, actor=None, source="test", route=Route.objects.get(name="users"),
               partial=True)
    page = client.post(f"{PAGE}{stale}/apply/", follow=True).content.decode()
    assert "Not applied: route &#x27;users&#x27; or its traffic changed since this advice was made" in page
    assert Route.objects.get(name="users").load_balancing_strategy == "round_robin"


def test_the_apply_needs_a_post(slow_backend):
    client = signed_in("operator")
    assert client.get(f"{PAGE}{advice_id()}/apply/").status_code == 405


def test_information_stays_on_the_advice_page_and_off_the_admin_home(client, staff_user):
    route("fast", read_timeout_ms=60000)
    hourly("fast", "10.0.0.5:8080", 24, 1000, latency=0.04, tail=(0.1, 2))
    assert client.login(username="alice", password=PASSWORD)
    advice = client.get("/admin/metrics/dashboard/advice/").content.decode()
    home = client.get("/admin/").content.decode()
    assert "read_timeout_ms" in advice
    assert "read_timeout_ms" not in home
