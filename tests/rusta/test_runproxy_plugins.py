"""Plugins configured through the API reach running `runproxy` processes: the example package changes requests, the
gateway-wide list applies to every route, and a faulty plugin under load costs 502 `plugin_failed`, never a 500."""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from tests.support.gateway import Gateway, http, start_gateway
from tests.support.plugin_packages import installed_for_gateway
from tests.support.upstream import UpstreamServer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def api() -> APIClient:
    user = get_user_model().objects.create_user("ops", "ops@example.com", "a-long-test-password-1",
                                                is_staff=True, is_superuser=True)
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def packages(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The example package and the faulty plugins installed here and in the gateway's processes."""
    with installed_for_gateway(tmp_path / "site") as env:
        yield env


def route(api: APIClient, upstream: UpstreamServer, name: str, **fields: Any) -> dict[str, Any]:
    response = api.post("/api/routes/", {
        "name": name, "external_path": f"/{name}/{{page}}", "methods": ["GET"],
        "backends": [{"host": "http://127.0.0.1", "port": upstream.port}], **fields}, format="json")
    assert response.status_code == 201, response.json()
    return response.json()


def eventually(gateway: Gateway, path: str, wanted: int, within: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    deadline = time.monotonic() + within
    while True:
        reply = http("GET", gateway.url + path)
        if reply[0] == wanted or time.monotonic() > deadline:
            return reply
        time.sleep(0.05)


def test_the_example_plugin_saved_on_a_route_changes_its_requests(tmp_path, api, packages):
    with UpstreamServer() as upstream:
        route(api, upstream, "plugged", plugins=[
            {"name": "example", "config": {"header_value": "from-the-route", "deny": ["/plugged/admin"]}}])
        route(api, upstream, "plain")
        gateway = start_gateway(tmp_path, extra_env=packages)
        try:
            assert http("GET", gateway.url + "/plugged/home")[0] == 200
            assert upstream.requests[-1].header("X-Example") == ["from-the-route"]
            status, _, body = http("GET", gateway.url + "/plugged/admin")
            assert (status, body) == (403, b"Refused by the example plugin.\n")
            assert http("GET", gateway.url + "/plain/home")[0] == 200
            assert upstream.requests[-1].header("X-Example") == []
        finally:
            assert gateway.stop() == 0


def test_the_gateway_wide_plugins_run_on_every_route_unless_the_route_replaces_the_entry(tmp_path, api, packages):
    with UpstreamServer() as upstream:
        route(api, upstream, "plain")
        route(api, upstream, "own", plugins=[{"name": "example", "config": {"header_value": "the-route-s"}}])
        gateway = start_gateway(tmp_path, extra_env=packages)
        try:
            response = api.patch("/api/config/settings/", {"plugins": [
                {"name": "example", "config": {"header_value": "gateway-wide"}}]}, format="json")
            assert response.status_code == 200, response.json()
            assert response.json()["added"] == ["plugins"]
            deadline = time.monotonic() + 5
            while True:
                assert http("GET", gateway.url + "/plain/home")[0] == 200
                if upstream.requests[-1].header("X-Example") == ["gateway-wide"] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
            assert upstream.requests[-1].header("X-Example") == ["gateway-wide"]
            assert http("GET", gateway.url + "/own/home")[0] == 200
            assert upstream.requests[-1].header("X-Example") == ["the-route-s"]
        finally:
            assert gateway.stop() == 0


def test_a_misconfigured_plugin_is_refused_by_path_and_nothing_is_saved(api, packages):
    with UpstreamServer() as upstream:
        response = api.post("/api/routes/", {
            "name": "bad", "external_path": "/bad", "methods": ["GET"],
            "backends": [{"host": "http://127.0.0.1", "port": upstream.port}],
            "plugins": [{"name": "example", "config": {"deny": ["admin"]}}, {"name": "exampel"}]}, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["plugins[0].config.deny[0]"] == ["Must be a path starting with /."]
    assert errors["plugins[1].name"][0].startswith("Unknown plugin 'exampel'; installed: ")
    assert api.get("/api/routes/").json()["count"] == 0
    response = api.patch("/api/config/settings/", {"plugins": [{"name": "example", "timout_ms": 5}]}, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["plugins[0].timout_ms"]


def test_a_raising_plugin_under_load_costs_502_plugin_failed_and_never_a_500(tmp_path, api, packages):
    with UpstreamServer() as upstream:
        saved = route(api, upstream, "faulty", plugins=[{"name": "raising"}])
        gateway = start_gateway(tmp_path, workers=2, extra_env=packages)
        replies: list[tuple[int, bytes]] = []
        try:
            stop = time.monotonic() + 2.0

            def load() -> None:
                while time.monotonic() < stop:
                    status, _, body = http("GET", gateway.url + "/faulty/home", timeout=5)
                    replies.append((status, body))

            threads = [threading.Thread(target=load) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert http("GET", gateway.url + "/health")[0] == 200
            # on_error "continue": the same plugin is passed over and requests succeed.
            entry = {"name": "raising", "on_error": "continue"}
            response = api.patch(f"/api/routes/{saved['id']}/", {"plugins": [entry]}, format="json")
            assert response.status_code == 200, response.json()
            assert eventually(gateway, "/faulty/home", 200)[0] == 200
        finally:
            assert gateway.stop() == 0
    assert len(replies) > 20
    assert {status for status, _ in replies} == {502}
    assert {json.loads(body)["type"] for _, body in replies} == {"plugin_failed"}
