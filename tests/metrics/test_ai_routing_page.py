"""A route's AI routing page in the admin (metrics.ai_routing), from decisions recorded by real DecisionLogs and
written the way gateway workers write them (metrics.procfiles)."""
from __future__ import annotations

import os
import re
import time

import pytest
from django.urls import reverse

from metrics import procfiles
from protocols.ai import records
from protocols.ai.decide import Decision, Source
from protocols.ai.records import DecisionLog
from protocols.recorder import Totals
from routes.models import Route
from routes.services import save_route
from tests.metrics.passive import gateway_files  # noqa: F401
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, staff_user):
    assert client.login(username="alice", password=PASSWORD)
    return client


def ai_route(name: str = "shop", **policy: object) -> Route:
    backends = [{"host": "http://10.0.0.5", "port": 8080}, {"host": "http://10.0.0.6", "port": 8080}]
    return save_route({"name": name, "external_path": f"/{name}", "methods": ["GET"], "backends": backends,
                       "ai_policy": {"strategy": "latency_prediction", **policy}}, actor=None, source="test")


def report(folder, *logs: DecisionLog, pid: int | None = None) -> None:
    """A worker's figures file with these logs' snapshot, as the flusher writes it."""
    procfiles.write(folder, Totals(), [], time.time(), pid=pid or os.getpid(),
                    ai=records.snapshot(logs=list(logs), clients=[]))


def busy_log() -> DecisionLog:
    log = DecisionLog()
    log.record("shop", "content_analysis", Decision(0, "model", "confident", 0.0004), "http://10.0.0.5:8080")
    log.record("shop", "content_analysis", Decision(1, "llm", "asked the model", 0.25), "http://10.0.0.6:8080")
    log.record("shop", "content_analysis", Decision(None, "fallback", "budget exceeded", 1.0))
    log.compare("shop", True)
    log.compare("shop", True)
    log.compare("shop", False)
    log.verdict("shop", "203.0.113.7", 12.5, ("burst", "new path"), "shadow")
    return log


def page(client, route: str = "shop") -> str:
    response = client.get(reverse("metrics-dashboard:ai", args=[route]))
    assert response.status_code == 200
    return response.content.decode()


def rows(html: str, table: str) -> list[list[str]]:
    """The cells of a table's body rows, as text."""
    body = re.search(rf'<table id="{table}".*?<tbody>(.*?)</tbody>', html, re.S)
    assert body, table
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)]


def figure(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}">(.*?)<', html)
    assert found, element_id
    return found.group(1)


def test_the_page_shows_the_decision_mix_agreement_and_fallback_reasons(admin_client, gateway_files):  # noqa: F811
    ai_route()
    report(gateway_files, busy_log())
    html = page(admin_client)
    assert [figure(html, f"ai-source-{source}") for source in ("model", "llm", "cache", "fallback")] == [
        "1", "1", "0", "1"]
    assert figure(html, "ai-decisions") == "3"
    assert figure(html, "ai-agreement-rate") == "66.7%"
    assert figure(html, "ai-agreement-counts") == "2 of 3"
    assert rows(html, "ai-strategies") == [["content_analysis", "1", "1", "0", "1", "3", "416.8"]]
    assert rows(html, "ai-fallbacks") == [["content_analysis", "budget exceeded", "1"]]


def test_the_page_lists_the_last_decisions_newest_first_and_the_anomaly_verdicts(admin_client,
                                                                                 gateway_files):  # noqa: F811
    ai_route()
    report(gateway_files, busy_log())
    html = page(admin_client)
    recent = rows(html, "ai-recent")
    assert [row[1:] for row in recent] == [
        ["content_analysis", "fallback", "–", "budget exceeded", "1000.0"],
        ["content_analysis", "llm", "http://10.0.0.6:8080", "asked the model", "250.0"],
        ["content_analysis", "model", "http://10.0.0.5:8080", "confident", "0.4"],
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", recent[0][0])
    [verdict] = rows(html, "ai-verdicts")
    assert verdict[1:] == ["203.0.113.7", "12.5", "burst, new path", "shadow"]
    assert figure(html, "ai-anomalies-shadow") == "1"


def test_the_page_shows_only_its_own_routes_decisions(admin_client, gateway_files):  # noqa: F811
    ai_route()
    log = busy_log()
    log.record("other", "content_analysis", Decision(0, "cache", "cached", 0.0001), "http://10.0.0.9:80")
    report(gateway_files, log)
    html = page(admin_client)
    assert figure(html, "ai-source-cache") == "0"
    assert "10.0.0.9" not in html


def test_the_decisions_of_every_worker_are_added_up(admin_client, gateway_files):  # noqa: F811
    ai_route()
    report(gateway_files, busy_log(), pid=os.getpid())
    report(gateway_files, busy_log(), pid=os.getppid())
    html = page(admin_client)
    assert figure(html, "ai-decisions") == "6"
    assert figure(html, "ai-agreement-counts") == "4 of 6"
    assert figure(html, "ai-workers") == "2"


def test_a_route_without_decisions_says_so(admin_client, gateway_files):  # noqa: F811
    ai_route()
    report(gateway_files)
    html = page(admin_client)
    assert re.search(r'<p class="metrics-none" id="ai-no-decisions">This route has no AI routing decision yet', html)
    assert rows(html, "ai-recent") == [["No decision yet."]]
    assert figure(html, "ai-agreement-rate") == "–"


def test_without_a_running_gateway_worker_the_page_says_so(admin_client, gateway_files):  # noqa: F811
    ai_route()
    html = page(admin_client)
    assert re.search(r'<p class="errornote" id="ai-no-workers">No gateway worker is running', html)


def test_with_a_running_worker_the_page_does_not_say_none_runs(admin_client, gateway_files):  # noqa: F811
    ai_route()
    report(gateway_files, busy_log())
    html = page(admin_client)
    assert re.search(r'id="ai-no-workers" hidden>', html)
    assert re.search(r'id="ai-no-decisions" hidden>', html)


def test_a_route_whose_ai_policy_is_disabled_says_so(admin_client, gateway_files):  # noqa: F811
    ai_route(enabled=False)
    assert 'id="ai-disabled"' in page(admin_client)


def test_the_json_variant_has_the_figures_and_the_decisions_per_minute_of_the_last_hour(admin_client,
                                                                                        gateway_files):  # noqa: F811
    ai_route()
    now = time.time()
    times = iter([now - 600, now - 600, now - 30, now - 7200])
    log = DecisionLog(clock=lambda: next(times))
    sources: tuple[Source, ...] = ("model", "model", "llm", "model")
    for source in sources:
        log.record("shop", "latency_prediction", Decision(0, source, "fastest", 0.0001), "http://10.0.0.5:8080")
    report(gateway_files, log)

    body = admin_client.get(reverse("metrics-dashboard:ai-data", args=["shop"])).json()
    assert body["decisions"] == 4 and body["sources"]["model"] == 3
    minutes, series = body["chart"]["minutes"], body["chart"]["series"]
    assert len(minutes) == 60 and minutes[-1] <= now < minutes[-1] + 60 + 5
    counted = {minute: series["model"][index] for index, minute in enumerate(minutes) if series["model"][index]}
    assert counted == {int((now - 600) // 60) * 60: 2}  # the decision of two hours ago is not drawn
    assert sum(series["llm"]) == 1 and series["llm"][minutes.index(int((now - 30) // 60) * 60)] == 1


def test_the_route_page_links_to_its_ai_routing_page(admin_client):
    route = ai_route()
    html = admin_client.get(reverse("admin:routes_route_change", args=[route.pk])).content.decode()
    assert f'href="{reverse("metrics-dashboard:ai", args=["shop"])}" id="rusta-ai-routing-link">AI routing</a>' in html


@pytest.mark.parametrize("policy", [None, {"enabled": False, "strategy": "latency_prediction"}])
def test_a_route_without_ai_routing_has_no_link_to_it(admin_client, policy):
    route = save_route({"name": "plain", "external_path": "/plain", "methods": ["GET"],
                        "backends": [{"host": "http://10.0.0.5", "port": 8080}], "ai_policy": policy},
                       actor=None, source="test")
    html = admin_client.get(reverse("admin:routes_route_change", args=[route.pk])).content.decode()
    assert "rusta-ai-routing-link" not in html


@pytest.mark.parametrize("name", ["metrics-dashboard:ai", "metrics-dashboard:ai-data"])
def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client, plain_user, name):
    ai_route()
    assert client.login(username="bob", password=PASSWORD)
    response = client.get(reverse(name, args=["shop"]))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")


def test_an_unknown_route_has_no_page(admin_client):
    assert admin_client.get(reverse("metrics-dashboard:ai", args=["nope"])).status_code == 404
    assert admin_client.get(reverse("metrics-dashboard:ai-data", args=["nope"])).status_code == 404
