"""Each route's isolation forest: trained once there are enough windows, kept until it is RUSTA_ABUSE_RETRAIN_S
old, and scoring an isolated window far above ordinary ones."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from random import Random

from metrics.abuse.features import ClientWindowFeatures
from metrics.abuse.forest import MIN_TRAINING_WINDOWS, Forests
from metrics.abuse.signatures import ISOLATION_CUTOFF

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def ordinary(count: int, seed: int = 1) -> list[ClientWindowFeatures]:
    rng = Random(seed)
    return [ClientWindowFeatures(start=NOW, window_s=10.0, client=f"ip:10.0.0.{n % 50}", requests=rng.randint(1, 20),
                                 errors_4xx=rng.randint(0, 1), distinct_paths=rng.randint(1, 8),
                                 bytes=rng.randint(1000, 50000)) for n in range(count)]


def test_too_few_windows_leave_the_robust_statistics_alone():
    assert Forests().for_route("shop", ordinary(MIN_TRAINING_WINDOWS - 1), NOW, 600) is None


def test_a_forest_is_kept_until_it_is_due_for_retraining():
    forests = Forests()
    first = forests.for_route("shop", ordinary(400), NOW, 600)
    assert first is not None and first.version.startswith("iforest-sklearn")
    assert "-shop-20261201T120000-" in first.version
    assert forests.for_route("shop", ordinary(400, seed=2), NOW + timedelta(seconds=599), 600) is first
    retrained = forests.for_route("shop", ordinary(400, seed=2), NOW + timedelta(seconds=600), 600)
    assert retrained is not first and retrained.version.endswith("T121000-n400")


def test_an_isolated_window_scores_above_ordinary_ones():
    forest = Forests().for_route("shop", ordinary(400), NOW, 600)
    assert forest is not None
    odd = ClientWindowFeatures(start=NOW, window_s=10.0, client="ip:203.0.113.9", requests=400, errors_4xx=390,
                               not_found=390, distinct_paths=390, bytes=60000)
    usual = sorted(forest.isolation(ordinary(400, seed=3)))
    (score,) = forest.isolation([odd])
    assert score > ISOLATION_CUTOFF > usual[int(0.98 * len(usual))]  # above all but the oddest ordinary ones
