"""The detection run on hand-made client windows: merging writers, shadow and enforcing verdicts, extension,
lifts, a route still learning, retention, the time budget, and the command."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command

from metrics.abuse.detection import detect
from metrics.abuse.features import COLUMNS, merge_rows
from metrics.abuse.verdicts import lift_verdict
from metrics.models import ClientWindow, Verdict
from routes.services import save_route

pytestmark = pytest.mark.django_db

START = datetime(2026, 12, 1, 12, tzinfo=UTC)
WINDOWS = 40  # 400 s of history before the judged windows
NOW = START + timedelta(seconds=10 * (WINDOWS + 1))


def shop(**abuse: Any) -> None:
    save_route({"name": "shop", "external_path": "/shop", "methods": ["GET", "POST"], "abuse": abuse,
                "backends": [{"host": "http://127.0.0.1", "port": 9}]}, actor=None, source="test")


def window(index: int, client: str, source: str = "gateway-0", **counts: Any) -> ClientWindow:
    fields: dict[str, Any] = {"requests": 4, "distinct_paths": 3, "bytes_out": 8000, **counts}
    return ClientWindow(start=START + timedelta(seconds=10 * index), window_s=10.0, route="shop", client=client,
                        source=source, **fields)


def normal_crowd(clients: int = 20) -> None:
    ClientWindow.objects.bulk_create([window(i, f"ip:10.0.0.{c}", requests=3 + (i + c) % 4)
                                      for c in range(clients) for i in range(WINDOWS + 1)])


def stuffer(at: int = WINDOWS, client: str = "ip:203.0.113.5") -> None:
    ClientWindow.objects.create(**{f.name: getattr(window(at, client, requests=40, errors_4xx=39,
                                                          auth_failures=39, distinct_paths=1), f.name)
                                   for f in ClientWindow._meta.fields if f.name != "id"})


def test_one_windows_rows_from_two_writers_merge_into_one_client_window():
    rows = [window(0, "sub:ann", "gateway-0", requests=3, errors_4xx=1, auth_failures=1, bytes_in=100, bytes_out=900,
                   distinct_paths=2, path_hashes=["a1", "b2"], distinct_addresses=1, address_hashes=["x"]),
            window(0, "sub:ann", "gateway-1", requests=5, bytes_out=1500, distinct_paths=2,
                   path_hashes=["b2", "c3"], distinct_addresses=2, address_hashes=["x", "y"])]
    ClientWindow.objects.bulk_create(rows)
    (merged,) = merge_rows(ClientWindow.objects.values_list(*COLUMNS, named=True))["sub:ann"]
    assert (merged.requests, merged.errors_4xx, merged.auth_failures, merged.bytes) == (8, 1, 1, 2500)
    assert merged.distinct_paths == 3  # a1, b2, c3: the union, not 2 + 2
    assert merged.distinct_addresses == 2
    assert merged.sources == 2


def test_the_same_rows_from_two_writers_are_judged_as_one_client():
    shop()
    normal_crowd()
    ClientWindow.objects.bulk_create([window(WINDOWS, "ip:203.0.113.5", source=f"gateway-{n}", requests=20,
                                             errors_4xx=20, auth_failures=20, distinct_paths=1) for n in (0, 1)])
    detect(NOW)
    verdict = Verdict.objects.get()
    assert verdict.features[0]["name"] == "auth_failures" and verdict.features[0]["value"] == 40


def test_shadow_mode_records_a_verdict_the_gateway_does_not_apply():
    shop()  # mode defaults to shadow
    normal_crowd()
    stuffer()
    run = detect(NOW)
    verdict = Verdict.objects.get()
    assert run.created == 1
    assert (verdict.kind, verdict.action, verdict.factor) == ("credential_stuffing", "shadow", None)
    assert verdict.client == "ip:203.0.113.5" and verdict.score >= 6.0
    assert verdict.expires_at == NOW + timedelta(seconds=600)


def test_enforcing_with_lower_records_the_factor():
    shop(mode="enforce", action="lower", factor=0.1, personalized_limits=True, duration_s=120)
    normal_crowd()
    stuffer()
    detect(NOW)
    verdict = Verdict.objects.get()
    assert (verdict.action, verdict.factor) == ("lower", 0.1)
    assert verdict.expires_at == NOW + timedelta(seconds=120)


def test_a_second_run_extends_the_verdict_in_force_instead_of_adding_one():
    shop()
    normal_crowd()
    stuffer()
    detect(NOW)
    stuffer(at=WINDOWS + 1)
    later = NOW + timedelta(seconds=10)
    assert detect(later).extended == 1
    verdict = Verdict.objects.get()
    assert verdict.expires_at == later + timedelta(seconds=600)
    assert verdict.window_end == START + timedelta(seconds=10 * (WINDOWS + 2))


def test_running_twice_at_the_same_time_changes_nothing():
    shop()
    normal_crowd()
    stuffer()
    detect(NOW)
    before = list(Verdict.objects.values())
    detect(NOW)
    assert list(Verdict.objects.values()) == before


def test_a_lifted_verdict_is_not_given_again_within_its_term():
    shop()
    normal_crowd()
    stuffer()
    detect(NOW)
    lift_verdict(Verdict.objects.get(), "known partner", actor=None, source="test", now=NOW)
    stuffer(at=WINDOWS + 1)
    run = detect(NOW + timedelta(seconds=10))
    assert run.created == 0 and Verdict.objects.count() == 1


def test_the_signatures_the_route_leaves_out_give_no_verdict():
    shop(signatures=["burst", "scraping"])
    normal_crowd()
    stuffer()
    detect(NOW)
    assert not Verdict.objects.exists()


def test_a_route_with_too_few_clients_is_still_learning():
    shop()
    normal_crowd(clients=3)
    stuffer()
    detect(NOW)
    assert not Verdict.objects.exists()


def test_the_clients_past_the_gateways_cap_are_never_judged():
    shop()
    normal_crowd()
    stuffer(client="overflow")
    detect(NOW)
    assert not Verdict.objects.exists()


def test_windows_older_than_the_baseline_horizon_are_deleted():
    shop()
    normal_crowd()
    run = detect(START + timedelta(seconds=settings.RUSTA_ABUSE_BASELINE_S + 100))
    assert run.deleted == 20 * 10  # the first ten windows of each client
    assert not ClientWindow.objects.filter(start__lt=START + timedelta(seconds=100)).exists()


def test_a_run_over_its_budget_leaves_the_remaining_routes_and_the_next_runs_start_further_on():
    shop()
    for name in ("yak", "zoo"):
        save_route({"name": name, "external_path": f"/{name}", "methods": ["GET"], "abuse": {},
                    "backends": [{"host": "http://127.0.0.1", "port": 9}]}, actor=None, source="test")
    judged = []
    for run_number in range(3):
        ticks = iter([0.0, 0.0, 100.0, 100.0])  # time for one route only
        run = detect(NOW + timedelta(seconds=run_number * settings.RUSTA_ABUSE_INTERVAL_S), budget_s=5.0,
                     clock=ticks.__next__)
        assert len(run.routes) == 1 and len(run.skipped) == 2
        assert {run.routes[0].route, *run.skipped} == {"shop", "yak", "zoo"}
        judged.append(run.routes[0].route)
    # Three runs that each had time for one route judged each route once, not the first one three times.
    assert sorted(judged) == ["shop", "yak", "zoo"]


def test_the_command_runs_the_detection_and_says_what_it_did():
    shop()
    normal_crowd()
    stuffer()
    out = StringIO()
    call_command("detect_abuse", "--now", NOW.isoformat(), stdout=out)
    assert "shop: 21 client(s)" in out.getvalue() and "1 verdict(s) created" in out.getvalue()
    assert Verdict.objects.count() == 1


def test_the_command_refuses_a_time_without_an_offset():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--now"):
        call_command("detect_abuse", "--now", "2026-12-01T12:00:00")


def test_beat_runs_the_detection_every_interval():
    entry = settings.CELERY_BEAT_SCHEDULE["detect-abuse"]
    assert entry["task"] == "metrics.detect_abuse"
    assert entry["schedule"] == settings.RUSTA_ABUSE_INTERVAL_S


def test_the_task_runs_the_detection_as_of_the_time_it_is_given():
    from metrics.tasks import detect_abuse
    from routes.models import ConfigState

    shop()
    normal_crowd()
    stuffer()
    assert detect_abuse(NOW.isoformat()) == 1
    assert Verdict.objects.get().expires_at == NOW + timedelta(seconds=600)
    assert ConfigState.objects.get(pk=1).background_ran_at is not None  # the heartbeat, as every task
