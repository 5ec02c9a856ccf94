"""End to end: the synthetic traffic with its attacks replayed through a real `runproxy` (its own background worker
running the detection every second, windows of one second, so ten times faster than the traffic's 10 s windows)
to an upstream on loopback. Enforcing, each attacker gets 429 `client_blocked` soon after its attack starts while
the normal clients keep being served; in shadow mode no answer changes, and the verdicts are recorded."""
from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from metrics.models import Verdict
from routes.services import save_route
from tests.support.attack_replay import (
    ROUTE_PATH,
    StatusUpstream,
    gateway_client,
    replay,
    status_upstream,
    wall_clock_aligned,
)
from tests.support.attack_traffic import ATTACK_KINDS, Traffic, generate
from tests.support.gateway import start_gateway

pytestmark = pytest.mark.django_db(transaction=True)
SPEED = 10.0  # the traffic's 10 s windows become the gateway's 1 s windows
WINDOW_S = INTERVAL_S = 1.0
REFRESH_S = 1.0  # each gateway worker reads the verdicts back about every second
FLUSH_S = 1.0  # each worker hands over a closed window within about a second
# From an attack's start to the attacker's first 429: its first whole window closes (the one it started in may hold
# too little of it: up to two windows) and is written, the detection judges it within two of its intervals, the
# worker reads the verdict back. Scraping shows only over three consecutive windows: two more.
DEADLINE_S = 2 * WINDOW_S + FLUSH_S + 2 * INTERVAL_S + REFRESH_S
EXTRA_WINDOWS = {"scraping": 2 * WINDOW_S}
# The traffic's first seconds replayed (of its 480): the attacks start between 100 and 120 and every one is judged
# well within this (the slowest, scraping, after three windows); the rest would only repeat what the start shows.
REPLAYED_S = 260.0


@pytest.fixture(scope="module")
def traffic() -> Traffic:
    return generate(seed=4, duration_s=480.0, clients=16, attacks_per_kind=1, attacks_from=100.0)


@pytest.fixture
def upstream() -> Iterator[StatusUpstream]:
    with status_upstream() as server:
        yield server


def run(tmp_path, upstream: StatusUpstream, traffic: Traffic, mode: str) -> list:
    save_route({"name": "shop", "external_path": ROUTE_PATH, "methods": ["GET", "POST"],
                "abuse": {"mode": mode, "action": "block"},
                "backends": [{"host": "http://127.0.0.1", "port": upstream.port}]}, actor=None, source="test")
    gateway = start_gateway(tmp_path, background=True, extra_env={
        "RUSTA_ABUSE_WINDOW_S": "1", "RUSTA_ABUSE_INTERVAL_S": "1", "RUSTA_TRUSTED_PROXIES": "127.0.0.1",
        "RUSTA_ACCESS_LOG": "false"})
    try:
        wall_clock_aligned(WINDOW_S)
        with ThreadPoolExecutor(1) as thread:  # asyncio.run in a thread of its own: pytest-django's loop rules
            replayed = [request for request in traffic.requests if request.t <= REPLAYED_S]
            return thread.submit(replay, gateway.port, replayed, speed=SPEED).result()
    finally:
        assert gateway.stop() == 0, gateway.log()[-3000:]


def test_enforcing_blocks_each_attacker_soon_after_its_attack_starts_and_serves_the_others(tmp_path, upstream,
                                                                                            traffic):
    answers = run(tmp_path, upstream, traffic, "enforce")
    normal = {gateway_client(c) for c in traffic.normal_clients}
    delays = {}
    for attack in traffic.attacks:
        mine = gateway_client(attack.client)
        blocked = [a for a in answers if gateway_client(a.request.client) == mine and a.status == 429
                   and a.verdict]
        assert blocked, f"{attack.kind} by {mine} was never blocked"
        delays[attack.kind] = min(a.due for a in blocked) - attack.start / SPEED
    served = [a for a in answers if gateway_client(a.request.client) in normal]
    wrong = [a for a in served if a.status != a.request.status]
    print(f"\nfirst 429 after the attack started (s): {dict(sorted((k, round(v, 2)) for k, v in delays.items()))}; "
          f"normal clients: {len(served) - len(wrong)} of {len(served)} answered as the upstream answers")
    for kind in ATTACK_KINDS:
        assert delays[kind] <= DEADLINE_S + EXTRA_WINDOWS.get(kind, 0.0), delays
    assert not wrong, wrong[:5]


@pytest.mark.one_suite  # the gateway, database and Redis steps are the enforcing test's, which runs in both
def test_in_shadow_mode_no_answer_changes_and_the_verdicts_are_recorded(tmp_path, upstream, traffic):
    answers = run(tmp_path, upstream, traffic, "shadow")
    changed = [a for a in answers if a.status != a.request.status or a.verdict]
    assert len(answers) == len([request for request in traffic.requests if request.t <= REPLAYED_S])
    assert not changed, changed[:5]
    with ThreadPoolExecutor(1) as thread:
        recorded = thread.submit(lambda: set(Verdict.objects.values_list("client", "kind", "action"))).result()
    for attack in traffic.attacks:
        assert (gateway_client(attack.client), attack.kind, "shadow") in recorded, recorded
    assert not {client for client, _, _ in recorded} & {gateway_client(c) for c in traffic.normal_clients}
