"""The anomaly detector on synthetic traffic (tests/support/anomaly_traffic.py): attackers caught within seconds,
hardly any normal client flagged, and what an operator relies on besides: steady heavy clients and slow growth are
left alone, a client's first requests are never refused, five 404s are not a scan, an outage flags nobody, memory
is bounded, and every reason says what was seen against what is typical.

No sockets, no sleeps: a fake clock is set to each event's time before the detector sees it.
"""
from __future__ import annotations

from collections.abc import Iterable
from random import Random

import pytest

from protocols.ai.anomaly import REASON_KINDS, AnomalyDetector, Verdict
from tests.support.anomaly_traffic import (
    SCAN_PATHS,
    Event,
    Report,
    Traffic,
    evaluate,
    generate,
    requests,
    steady,
)

CLIENT = "198.51.100.7"  # the client each behaviour test is about, among a crowd of normal ones


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def replay(events: Iterable[Event], window_s: float = 10.0) -> list[tuple[Event, Verdict]]:
    """Each event's request scored, then its answer reported, at the event's time."""
    clock = FakeClock()
    detector = AnomalyDetector(window_s=window_s, clock=clock)
    verdicts = []
    for event in sorted(events):
        clock.now, client, path, body_bytes, status = event
        verdicts.append((event, detector.score(client, path, body_bytes)))
        detector.outcome(client, status)
    return verdicts


def report(traffic: Traffic) -> Report:
    verdicts = replay(traffic.events, traffic.window_s)
    found = evaluate(traffic, [(event[0], event[1]) for event, verdict in verdicts if verdict.anomalous])
    print(found.describe())
    return found


def crowd(seed: int = 7, duration_s: float = 360.0) -> list[Event]:
    """100 normal clients, four of them heavy, and no attacker."""
    return generate(seed, clients=100, duration_s=duration_s, bursts=0, scans=0).events


def verdicts_for(client: str, events: Iterable[Event]) -> list[tuple[Event, Verdict]]:
    return [(event, verdict) for event, verdict in replay(events) if event[1] == client]


def flagged(verdicts: list[tuple[Event, Verdict]]) -> list[tuple[float, tuple[str, ...]]]:
    return [(event[0], verdict.reasons) for event, verdict in verdicts if verdict.anomalous]


def small(seed: int, *, bursts: int = 5, scans: int = 5) -> Traffic:
    """The fast version, for a replay through a real gateway: 60 clients for 20 s, 2 s windows."""
    return generate(seed, clients=60, duration_s=20.0, window_s=2.0, bursts=bursts, scans=scans)


def test_generated_traffic_is_reproducible_and_sorted() -> None:
    first, again = small(5), small(5)

    assert first.events == again.events and first.attacks == again.attacks
    assert [event[0] for event in first.events] == sorted(event[0] for event in first.events)
    assert first.events != small(6).events


def test_generated_attacks_happen_when_labelled() -> None:
    traffic = generate(3)
    normal = [event for event in traffic.events if event[1] in traffic.normal_clients]
    errors = sum(event[4] >= 400 for event in normal) / len(normal)

    assert 0.01 < errors < 0.03
    for attack in traffic.attacks:
        during = [event for event in traffic.events
                  if event[1] == attack.client and attack.start <= event[0] <= attack.end]
        rate = len(during) / (attack.end - attack.start)
        if attack.kind == "burst":
            assert rate >= 25, attack
        else:
            scanned = [event for event in during if event[2] in SCAN_PATHS]
            assert scanned and all(event[4] == 404 for event in scanned), attack
            assert len({event[2] for event in scanned}) >= 0.9 * len(scanned), attack


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bursts_and_scans_are_caught_and_few_normal_clients_flagged(seed: int) -> None:
    found = report(generate(seed))

    assert found.recall >= 0.9
    assert found.false_positive_rate <= 0.01
    assert found.early == ()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_burst_is_flagged_within_two_seconds(seed: int) -> None:
    found = report(generate(seed, bursts=8, scans=0))

    assert all(detection.seconds is not None and detection.seconds < 2.0 for detection in found.detections)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_small_fast_version_catches_attackers_too(seed: int) -> None:
    found = report(small(seed))

    assert found.recall >= 0.9
    assert found.false_positive_rate <= 0.01
    assert found.early == ()


def test_a_steady_client_far_heavier_than_the_crowd_is_not_flagged() -> None:
    partner = requests(Random(1), CLIENT, steady(40.0), 40.0, 0.0, 360.0)  # five times the heaviest of the crowd

    assert flagged(verdicts_for(CLIENT, crowd() + partner)) == []


def test_a_heavy_client_back_from_a_pause_is_not_flagged() -> None:
    partner = requests(Random(1), CLIENT, lambda t: 0.0 if 120 <= t < 300 else 20.0, 20.0, 0.0, 360.0)

    assert flagged(verdicts_for(CLIENT, crowd() + partner)) == []


def test_a_client_doubling_its_rate_every_two_minutes_is_not_flagged() -> None:
    growing = requests(Random(2), CLIENT, lambda t: 5.0 * 2 ** (t / 120), 40.0, 0.0, 360.0)  # 5 to 40 req/s

    assert flagged(verdicts_for(CLIENT, crowd() + growing)) == []


def test_a_client_quadrupling_its_rate_at_once_is_flagged_for_its_request_rate() -> None:
    jumping = requests(Random(2), CLIENT, lambda t: 5.0 if t < 180 else 20.0, 20.0, 0.0, 360.0)

    flags = flagged(verdicts_for(CLIENT, crowd() + jumping))

    assert flags and 180 <= flags[0][0] < 185
    assert flags[0][1][0].startswith("request rate ")


def test_a_new_clients_first_three_requests_are_never_anomalous() -> None:
    flood = [(60.0 + index * 0.01, CLIENT, SCAN_PATHS[index], 5_000_000, 404) for index in range(50)]

    verdicts = [verdict for _, verdict in verdicts_for(CLIENT, crowd(duration_s=70.0) + flood)]

    assert not any(verdict.anomalous for verdict in verdicts[:3])
    assert verdicts[3].anomalous  # the fourth is judged, and 400 req/s of 5 MB bodies to 404s is no normal client


def test_five_404s_in_a_row_are_not_a_scan() -> None:
    visits = requests(Random(3), CLIENT, steady(1.0), 1.3, 0.0, 100.0, error_ratio=0.0)
    broken_links = [(120.0 + index, CLIENT, f"/api/products/{index}/image", 0, 404) for index in range(5)]

    assert flagged(verdicts_for(CLIENT, crowd(duration_s=180.0) + visits + broken_links)) == []


def test_a_scan_is_flagged_for_its_error_ratio_by_its_tenth_request() -> None:
    visits = requests(Random(3), CLIENT, steady(1.0), 1.3, 0.0, 100.0, error_ratio=0.0)
    scan = [(120.0 + index / 3, CLIENT, SCAN_PATHS[index], 0, 404) for index in range(30)]

    flags = flagged(verdicts_for(CLIENT, crowd(duration_s=180.0) + visits + scan))

    assert flags and flags[0][0] <= scan[9][0]
    assert flags[0][1][0].startswith("error ratio ")


def test_large_bodies_are_flagged_for_their_size() -> None:
    rng = Random(4)
    visits = requests(rng, CLIENT, steady(1.0), 1.3, 0.0, 120.0)
    uploads = [(120.0 + index, CLIENT, "/api/orders", 2_000_000, 200) for index in range(10)]

    flags = flagged(verdicts_for(CLIENT, crowd(duration_s=180.0) + visits + uploads))

    assert flags and flags[0][0] == 120.0  # the first upload already
    assert flags[0][1][0].startswith("body size ") and flags[-1][1][0].startswith("body size 2 MB mean")


def test_an_outage_flags_nobody() -> None:
    events = [(t, client, path, body, 503 if 150 <= t < 210 else status)
              for t, client, path, body, status in crowd(duration_s=300.0)]

    assert [event for event, verdict in replay(events) if verdict.anomalous] == []


def test_every_reason_starts_with_a_known_kind_and_gives_figures() -> None:
    reasons = [reason for _, verdict in replay(generate(1, clients=100, duration_s=120.0).events)
               for reason in verdict.reasons]

    kinds = [next((kind for kind in REASON_KINDS if reason.startswith(kind + " ")), "") for reason in reasons]

    assert {"request rate", "error ratio"} <= set(kinds) <= set(REASON_KINDS)  # bursts and scans were seen
    for reason, kind in zip(reasons, kinds, strict=True):
        assert reason[len(kind) + 1].isdigit() and ", typical " in reason, reason


def test_memory_is_bounded_by_max_clients_evicting_the_least_recently_seen() -> None:
    clock = FakeClock()
    detector = AnomalyDetector(clock=clock, max_clients=100)
    for index in range(1000):
        clock.now = index * 0.01
        detector.score(f"10.1.{index // 256}.{index % 256}", "/api/products", 0)
        detector.score("10.9.9.9", "/api/cart", 0)  # a regular, seen all along

    assert detector.stats()["clients"] == 100
    assert "10.9.9.9" in detector and "10.1.3.231" in detector  # the regular and the latest newcomer
    assert "10.1.0.0" not in detector


def test_stats_report_the_clients_and_what_is_typical_on_the_route() -> None:
    clock = FakeClock()
    detector = AnomalyDetector(clock=clock)
    events = crowd(duration_s=60.0)
    for t, client, path, body_bytes, status in events:
        clock.now = t
        detector.score(client, path, body_bytes)
        detector.outcome(client, status)

    stats = detector.stats()
    assert stats["clients"] == len({event[1] for event in events})
    assert stats["scored"] == len(events)
    assert 1.0 < stats["population_rate"] < 10.0  # requests per second at the crowd's 95th percentile
    assert stats["population_error_ratio"] == 0.05  # 2% of answers fail: the floor is what is typical
