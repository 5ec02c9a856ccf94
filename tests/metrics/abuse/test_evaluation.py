"""The detection on synthetic traffic with labelled attacks (tests.support.attack_traffic), replayed window by
window through the real detection: recall per attack kind, false positives per normal client-minute, and what a
verdict says."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from metrics.models import ClientLimit, ClientWindow, Verdict
from routes.models import AuditEntry, ConfigState, Route
from tests.metrics.abuse.replay import Evaluation, replay
from tests.support.attack_traffic import ATTACK_KINDS, Traffic, generate

RECALL_TARGET = 0.9
FALSE_POSITIVE_TARGET = 0.001  # of normal client-minutes
INTERVAL_S = 60.0  # the detection's, in the traffic's time
WINDOW_S = 10.0

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate(seed=18, duration_s=2400.0, clients=150, attacks_per_kind=10, attacks_from=600.0)


@pytest.fixture(scope="module")
def evaluation(traffic: Traffic, django_db_setup, django_db_blocker) -> Iterator[tuple[Evaluation, list[Verdict]]]:
    """One replay for the module (half a minute): the detection every minute of the traffic's 40 minutes."""
    with django_db_blocker.unblock():
        try:
            result = replay(traffic, {"mode": "enforce", "action": "block"}, interval_s=INTERVAL_S)
            print(f"\n{result.summary()}")
            yield result, list(Verdict.objects.all())
        finally:
            for model in (Verdict, ClientWindow, ClientLimit, Route, AuditEntry, ConfigState):
                model.objects.all().delete()


@pytest.mark.parametrize("kind", ATTACK_KINDS)
def test_it_catches_nine_in_ten_attacks_of_each_kind(evaluation, kind):
    result, _ = evaluation
    print(f"{kind}: {result.caught[kind]}/{result.attacks[kind]}, first verdict after "
          f"{sorted(round(d) for d in result.delays[kind])} s")
    assert result.attacks[kind] == 10
    assert result.recall(kind) >= RECALL_TARGET, result.summary()


def test_it_flags_at_most_one_normal_client_minute_in_a_thousand(evaluation, traffic):
    result, _ = evaluation
    print(f"false positives: {len(result.flagged_minutes)} of {len(result.normal_minutes)} normal client-minutes "
          f"({100 * result.false_positive_rate:.3f}%)")
    assert len(result.normal_minutes) > 4000  # heavy, light, diurnal and newcomers all in it
    assert traffic.heavy and traffic.newcomers
    assert result.false_positive_rate <= FALSE_POSITIVE_TARGET, result.summary()


def test_heavy_steady_clients_and_newcomers_get_no_verdict(evaluation, traffic):
    _, verdicts = evaluation
    judged = {verdict.client for verdict in verdicts}
    assert not judged & (traffic.heavy | traffic.newcomers)


def test_an_attacker_has_one_verdict_per_kind_extended_while_it_goes_on(evaluation, traffic):
    _, verdicts = evaluation
    for attack in traffic.attacks:
        mine = [v for v in verdicts if v.client == attack.client and v.kind == attack.kind]
        assert len(mine) <= 1, [str(v) for v in mine]
    longest = max(traffic.attacks, key=lambda a: a.end - a.start)
    verdict = next(v for v in verdicts if v.client == longest.client and v.kind == longest.kind)
    assert (verdict.window_end - verdict.window_start).total_seconds() > 60  # extended over the attack's windows


def test_a_verdict_names_its_deviating_features_against_baseline_and_population(evaluation):
    _, verdicts = evaluation
    stuffing = next(v for v in verdicts if v.kind == "credential_stuffing")
    first = stuffing.features[0]
    assert first["name"] == "auth_failures"
    assert first["value"] >= 10 and first["score"] >= 6.0
    assert first["population"] <= 1  # normal clients rarely see a 401
    assert stuffing.score == pytest.approx(first["score"], abs=0.01)
    assert stuffing.action == "block" and stuffing.factor is None
    # duration_s (600) from the run that last saw it, which came at most an interval and two windows later.
    assert 600 <= (stuffing.expires_at - stuffing.window_end).total_seconds() <= 600 + INTERVAL_S + 2 * WINDOW_S
    burst = next(v for v in verdicts if v.kind == "burst")
    requests = burst.features[0]
    assert requests["name"] == "requests" and requests["baseline"] is not None  # its own past, before the burst
    assert requests["value"] > 5 * max(requests["baseline"], requests["population"])


def test_verdicts_record_the_isolation_forest_they_were_judged_with(evaluation):
    _, verdicts = evaluation
    versions = {v.model_version for v in verdicts}
    assert all(version.startswith("iforest-sklearn") and "-shop-" in version for version in versions), versions
    assert any(f["name"] == "isolation" for v in verdicts for f in v.features)
