"""The isolation forest of each route: scikit-learn's IsolationForest trained on the route's recent windows,
retrained every RUSTA_ABUSE_RETRAIN_S, its version recorded in each verdict. Imported by the detection only, never
by a gateway process (scikit-learn is large, and the data plane reads verdicts, not models)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import sklearn
from sklearn.ensemble import IsolationForest

from metrics.abuse.features import FEATURES, ClientWindowFeatures

# Fewer windows than this and the robust statistics judge alone ("robust-1" in the verdicts).
MIN_TRAINING_WINDOWS = 256
MAX_TRAINING_WINDOWS = 4096  # a uniform sample of them beyond this (the trees see 256 each anyway)
ROBUST_VERSION = "robust-1"


def vectors(windows: Sequence[ClientWindowFeatures]) -> np.ndarray:
    """Each window's counts on a log scale (heavy and light clients spread evenly) and its error ratio."""
    counts = np.array([[w.figure(name) for name in FEATURES] for w in windows], dtype=float)
    ratios = np.array([[w.error_ratio] for w in windows], dtype=float)
    return np.hstack([np.log1p(counts), ratios])


@dataclass(frozen=True, slots=True)
class RouteForest:
    """A trained forest and its version string (library version, route, training time, window count)."""

    model: IsolationForest
    version: str
    trained_at: datetime

    def isolation(self, windows: Sequence[ClientWindowFeatures]) -> list[float]:
        """Each window's anomaly score: about 0.5 for ordinary windows, near 1 for ones isolated at once."""
        if not windows:
            return []
        return [float(-score) for score in self.model.score_samples(vectors(windows))]


def train(route: str, windows: Sequence[ClientWindowFeatures], now: datetime, seed: int = 0) -> RouteForest | None:
    """A forest of `windows`, or None when there are too few of them."""
    if len(windows) < MIN_TRAINING_WINDOWS:
        return None
    data = vectors(windows)
    rng = np.random.default_rng(seed)
    if len(data) > MAX_TRAINING_WINDOWS:
        data = data[rng.choice(len(data), MAX_TRAINING_WINDOWS, replace=False)]
    model = IsolationForest(n_estimators=100, max_samples=min(256, len(data)), random_state=seed).fit(data)
    version = f"iforest-sklearn{sklearn.__version__}-{route}-{now:%Y%m%dT%H%M%S}-n{len(data)}"
    return RouteForest(model, version[:100], now)


class Forests:
    """The routes' forests in this process, each retrained once older than `retrain_s` (the Celery worker keeps
    them between runs; a management command trains afresh)."""

    def __init__(self) -> None:
        self.trained: dict[str, RouteForest] = {}

    def for_route(self, route: str, windows: Sequence[ClientWindowFeatures], now: datetime,
                  retrain_s: float) -> RouteForest | None:
        current = self.trained.get(route)
        if current is not None and 0 <= (now - current.trained_at).total_seconds() < retrain_s:
            return current
        fresh = train(route, windows, now)
        if fresh is None:
            self.trained.pop(route, None)
        else:
            self.trained[route] = fresh
        return fresh


forests = Forests()
