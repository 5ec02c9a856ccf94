"""Robust references and scores: each client's own baseline (median and MAD of its earlier windows), the route's
population (median and top quantile across its clients' windows) and how far a window's count is above them.

A count is judged against the larger of two references, the client's own and the crowd's, which is taking the
smaller of the two scores: a client always heavier than the crowd but steady is judged by its own past, a light
client that becomes as busy as a typical one is not flagged, and in an outage every client fails alike. The score
is the count's excess over the reference in overdispersed-Poisson deviations (as protocols.ai.anomaly does per
request), so a handful of events is never significant and a large reference tolerates proportionally more.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from math import sqrt

import numpy as np

from metrics.abuse.features import FEATURES, ClientWindowFeatures, is_credential

# A route's crowd needs this many earlier windows, of this many clients, before anyone is judged: a route that has
# just been given its abuse block (or has just started) is learning.
MIN_POPULATION_WINDOWS, MIN_POPULATION_CLIENTS = 60, 5
# A client's own baseline needs this many earlier windows; before that it is a newcomer, judged by the crowd's top.
MIN_HISTORY = 6
# The own reference is the median plus this many robust deviations (1.4826 MAD): the top of its usual windows.
OWN_SPREAD = 2.0
MAD_TO_SIGMA = 1.4826
# A newcomer is compared with the crowd's top, not its middle: it may be one of the heavy clients.
TOP_QUANTILE = 0.99
# Counts come a page's worth at a time (variance about twice the mean) and a client's level varies by about
# sqrt(0.1) ~ 30%; PRIOR keeps a handful of events from ever being significant.
DISPERSION, SPREAD, PRIOR = 2.0, 0.1, 2.0


def excess(value: float, reference: float) -> float:
    """How far `value` is above `reference`, in overdispersed-Poisson deviations; 0 when it is not above."""
    if value <= reference:
        return 0.0
    return (value - reference) / sqrt(DISPERSION * reference + SPREAD * reference * reference + PRIOR)


@dataclass(frozen=True, slots=True)
class Summary:
    """The median and robust spread of one feature over some windows."""

    median: float
    mad: float
    top: float
    count: int

    @property
    def high(self) -> float:
        """The top of the usual: median + OWN_SPREAD robust deviations."""
        return self.median + OWN_SPREAD * MAD_TO_SIGMA * self.mad


EMPTY = Summary(0.0, 0.0, 0.0, 0)


def summarize(values: Sequence[float]) -> Summary:
    if not values:
        return EMPTY
    array = np.asarray(values, dtype=float)
    median = float(np.median(array))
    return Summary(median, float(np.median(np.abs(array - median))), float(np.quantile(array, TOP_QUANTILE)),
                   len(values))


class Baseline:
    """One client's own baseline: each feature summarized over its earlier windows (those under no verdict)."""

    __slots__ = ("windows", "features")

    def __init__(self, windows: Sequence[ClientWindowFeatures]) -> None:
        self.windows = len(windows)
        self.features = {name: summarize([w.figure(name) for w in windows]) for name in FEATURES}

    @property
    def established(self) -> bool:
        return self.windows >= MIN_HISTORY


class Population:
    """The route's crowd: each feature summarized over every client's earlier windows (distinct addresses over
    the credential clients' only: an address client has one by definition)."""

    __slots__ = ("windows", "clients", "features")

    def __init__(self, windows: Iterable[ClientWindowFeatures]) -> None:
        kept = list(windows)
        self.windows = len(kept)
        self.clients = len({w.client for w in kept})
        self.features = {name: summarize([w.figure(name) for w in kept]) for name in FEATURES if
                         name != "distinct_addresses"}
        self.features["distinct_addresses"] = summarize([float(w.distinct_addresses) for w in kept
                                                         if is_credential(w.client)])

    @property
    def learning(self) -> bool:
        """Too few windows or clients yet to tell what is usual on the route: nobody is judged."""
        return self.windows < MIN_POPULATION_WINDOWS or self.clients < MIN_POPULATION_CLIENTS


@dataclass(frozen=True, slots=True)
class FeatureScore:
    """One feature of one window: its value, the client's own baseline (None for a newcomer), the crowd's median
    and top, and the score against the larger reference."""

    name: str
    value: float
    baseline: float | None
    own_high: float | None
    population: float
    population_top: float

    def score(self, newcomer_reference: str = "top") -> float:
        """Against max(own high, crowd's median); a newcomer's own reference is the crowd's top (default) or,
        for signatures whose other conditions already tell abuse from heavy use, the crowd's median."""
        if self.own_high is not None:
            reference = max(self.own_high, self.population)
        else:
            reference = self.population_top if newcomer_reference == "top" else self.population
        return excess(self.value, reference)

    def as_record(self, score: float) -> dict[str, object]:
        """The verdict's record of this feature: {name, value, baseline, population, score}."""
        return {"name": self.name, "value": self.value, "baseline": self.baseline, "population": self.population,
                "score": round(score, 2)}


def feature_scores(window: ClientWindowFeatures, own: Baseline, crowd: Population) -> dict[str, FeatureScore]:
    scores = {}
    for name in FEATURES:
        mine = own.features[name] if own.established else None
        theirs = crowd.features[name]
        scores[name] = FeatureScore(name, window.figure(name), None if mine is None else mine.median,
                                    None if mine is None else mine.high, theirs.median, theirs.top)
    return scores
