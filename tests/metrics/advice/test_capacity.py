"""metrics.advice.capacity: each route's forecast load and the gateway workers its peak needs."""
from __future__ import annotations

import math

import numpy as np
import pytest

from metrics.advice.capacity import UTILISATION, capacity
from metrics.advice.context import Context
from metrics.procfiles import Combined
from tests.support.advice_series import NOW, hourly, route

pytestmark = pytest.mark.django_db
HOURS = np.arange(14 * 24 + 24)
# Requests per hour: 1.8M at the mean (500 req/s), growing, with a daily peak near 810 req/s.
TRUE = 1_800_000 + 1000 * HOURS + 600_000 * np.sin(2 * np.pi * HOURS / 24)


def stored_history() -> None:
    route("api")
    hourly("api", "10.0.0.5:8080", 14 * 24, [int(v) for v in TRUE[:-24]])


def workers(running: int, requests: int = 0, cpu_s: float = 0.0) -> Combined:
    live = Combined(workers=running)
    live.busy_requests, live.busy_seconds = requests, cpu_s
    return live


def test_the_worker_count_follows_from_the_forecast_peak_and_the_measured_rate(settings):
    settings.RUSTA_WORKER_CAPACITY_RPS = 0.0
    stored_history()
    # The workers served 3M requests in 10,000 CPU seconds: 300 requests per second of busy time.
    [finding] = capacity(Context(NOW, workers(2, 3_000_000, 10_000.0)))
    figures = finding.evidence["figures"]
    true_peak = TRUE[-24:].max() / 3600
    assert abs(figures["forecast_peak_rps"] - true_peak) / true_peak < 0.05
    assert figures["worker_capacity_rps"] == 300.0
    assert figures["workers_needed"] == math.ceil(figures["forecast_peak_rps"] / (300 * UTILISATION)) == 4
    assert figures["routes"][0]["model"] == "holt_winters" and figures["routes"][0]["history_hours"] == 336
    assert finding.severity == "warning" and "start 2 more" in finding.text


def test_the_operators_setting_overrides_the_measured_rate(settings):
    settings.RUSTA_WORKER_CAPACITY_RPS = 1000.0
    stored_history()
    [finding] = capacity(Context(NOW, workers(1, 3_000_000, 10_000.0)))
    assert finding.evidence["figures"]["worker_capacity_from"] == "RUSTA_WORKER_CAPACITY_RPS"
    assert finding.evidence["figures"]["workers_needed"] == 2


def test_it_is_silent_when_the_running_workers_suffice(settings):
    settings.RUSTA_WORKER_CAPACITY_RPS = 0.0
    stored_history()
    assert capacity(Context(NOW, workers(6, 3_000_000, 10_000.0))) == []


def test_it_is_silent_until_the_rate_per_worker_is_known(settings):
    settings.RUSTA_WORKER_CAPACITY_RPS = 0.0
    stored_history()
    assert capacity(Context(NOW, workers(1, 100, 1.0))) == []
