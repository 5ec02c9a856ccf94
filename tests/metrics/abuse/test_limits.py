"""Personalized limits: learned from each client's normal windows, scaled to the route's rate-limit window."""
from __future__ import annotations

from datetime import timedelta

import pytest

from metrics.abuse.detection import detect
from metrics.models import ClientLimit, ClientWindow, Verdict
from routes.models import Route
from routes.services import save_route
from tests.metrics.abuse.test_detection import NOW, START, WINDOWS, normal_crowd, window

pytestmark = pytest.mark.django_db


def shop(rate_limit: dict | None = None, **abuse) -> None:
    save_route({"name": "shop", "external_path": "/shop", "methods": ["GET"], "rate_limit": rate_limit,
                "abuse": {"personalized_limits": True, "personalized_headroom": 2.0, **abuse},
                "backends": [{"host": "http://127.0.0.1", "port": 9}]}, actor=None, source="test")


def test_each_client_gets_a_limit_from_its_busiest_normal_windows_scaled_to_the_rate_limit_window():
    shop({"limit": 600, "window_s": 60})
    normal_crowd()
    ClientWindow.objects.bulk_create([window(i, "key:steady", requests=50) for i in range(WINDOWS + 1)]
                                     + [window(i, "key:rare", requests=1) for i in range(WINDOWS + 1)])
    detect(NOW)
    steady = ClientLimit.objects.get(route="shop", client="key:steady")
    assert (steady.limit, steady.window_s) == (50 * 2 * 6, 60.0)  # 50 per 10 s window, x2 headroom, per minute
    assert steady.learned_from >= 30
    light = ClientLimit.objects.get(route="shop", client="ip:10.0.0.1")
    assert light.limit == 6 * 2 * 6  # its busiest windows had 6 requests
    assert ClientLimit.objects.get(client="key:rare").limit == 60  # the floor: one request per second


def test_without_a_rate_limit_the_limit_is_per_detection_window():
    shop()
    normal_crowd()
    detect(NOW)
    assert set(ClientLimit.objects.values_list("window_s", flat=True)) == {10.0}


def test_windows_under_a_verdict_are_not_learned_from():
    shop()
    normal_crowd()
    ClientWindow.objects.bulk_create([window(i, "key:flood", requests=500 if i >= 10 else 5)
                                      for i in range(WINDOWS + 1)])
    Verdict.objects.create(route="shop", client="key:flood", kind="burst", score=20, model_version="robust-1",
                           action="shadow", window_start=START + timedelta(seconds=100),
                           window_end=START + timedelta(seconds=10 * (WINDOWS + 1)), expires_at=NOW)
    detect(NOW)
    assert ClientLimit.objects.filter(client="key:flood").first() is None  # 10 clean windows: too few yet


def test_a_route_that_stops_learning_loses_its_limits():
    shop()
    normal_crowd()
    detect(NOW)
    assert ClientLimit.objects.exists()
    save_route({"name": "shop", "external_path": "/shop", "methods": ["GET"], "abuse": {},
                "backends": [{"host": "http://127.0.0.1", "port": 9}]}, actor=None, source="test",
               route=Route.objects.get(name="shop"))
    detect(NOW)
    assert not ClientLimit.objects.exists()


def test_a_client_gone_for_the_whole_history_loses_its_limit_and_the_others_keep_theirs():
    shop()
    normal_crowd()
    ClientLimit.objects.create(route="shop", client="key:left-long-ago", limit=999, window_s=10.0, learned_from=40)
    detect(NOW)
    assert not ClientLimit.objects.filter(client="key:left-long-ago").exists()
    assert ClientLimit.objects.filter(route="shop", client="ip:10.0.0.1").exists()
