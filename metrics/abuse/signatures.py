"""The abuse signatures: which pattern of deviating features makes a burst, credential stuffing, enumeration,
scraping, token sharing, or an anomaly the isolation forest and the robust scores agree on.

Each signature needs its features' scores at or above the route's threshold and absolute floors (per window), so
that a light client's page load, a heavy client's steady traffic or a newcomer's first windows never match.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from metrics.abuse.features import ClientWindowFeatures, is_credential
from metrics.abuse.scoring import Baseline, FeatureScore, Population, feature_scores

BURST_MIN_REQUESTS = 50  # per window: below this, no burst whatever the multiple
STUFFING_MIN_FAILURES = 10  # 401/403 answers per window
STUFFING_MIN_SHARE = 0.5  # ...making at least half of the client's answers
ENUMERATION_MIN_NOT_FOUND = 10  # 404 answers per window
ENUMERATION_MIN_PATHS = 10  # ...over at least this many distinct paths
ENUMERATION_MIN_SHARE = 0.5
SCRAPING_WINDOWS = 3  # consecutive windows, each of them:
SCRAPING_MIN_REQUESTS = 20
SCRAPING_MIN_NOVELTY = 0.6  # distinct paths per request: a scraper rarely asks twice, a user's app does
SCRAPING_MIN_OK = 0.9  # mostly answered (not 4xx)
SHARING_MIN_ADDRESSES = 8  # distinct client addresses of one credential per window
ANOMALY_MIN_REQUESTS = 20
ISOLATION_CUTOFF = 0.62  # the isolation forest's anomaly score (about 0.5 ordinary; the oddest 1-2% pass this)
MAX_RECORDED = 6  # features recorded per verdict beyond the signature's own


@dataclass(slots=True)
class Finding:
    """A signature matched by one client's window: the verdict to record or extend."""

    kind: str
    score: float
    window: ClientWindowFeatures
    features: list[dict[str, object]] = field(default_factory=list)


def _records(scores: dict[str, FeatureScore], own: Sequence[tuple[str, float]], threshold: float,
             isolation: float | None) -> list[dict[str, object]]:
    """The signature's features first, then every other feature at or above half the threshold, worst first."""
    named = {name for name, _ in own}
    records = [scores[name].as_record(score) for name, score in own]
    others = sorted(((s.score(), s) for name, s in scores.items() if name not in named), key=lambda p: -p[0])
    records += [s.as_record(score) for score, s in others[:MAX_RECORDED] if score >= threshold / 2]
    if isolation is not None:
        records.append({"name": "isolation", "value": round(isolation, 3), "baseline": None, "population": 0.5,
                        "score": round(isolation, 3)})
    return records


def _contiguous(windows: Sequence[ClientWindowFeatures]) -> bool:
    return all(later.start - earlier.start <= timedelta(seconds=earlier.window_s * 1.5)
               for earlier, later in zip(windows, windows[1:], strict=False))


def match(window: ClientWindowFeatures, previous: Sequence[ClientWindowFeatures], own: Baseline, crowd: Population,
          *, threshold: float, signatures: frozenset[str], isolation: float | None) -> list[Finding]:
    """The signatures `window` matches; `previous` are the client's windows just before it (oldest first)."""
    scores = feature_scores(window, own, crowd)
    found: list[Finding] = []

    def add(kind: str, score: float, own_features: Sequence[tuple[str, float]]) -> None:
        if kind in signatures and score >= threshold:
            found.append(Finding(kind, score, window, _records(scores, own_features, threshold, isolation)))

    requests = window.requests or 1
    burst = scores["requests"].score()
    if window.requests >= BURST_MIN_REQUESTS:
        add("burst", burst, [("requests", burst)])
    failures = scores["auth_failures"].score()
    if window.auth_failures >= STUFFING_MIN_FAILURES and window.auth_failures / requests >= STUFFING_MIN_SHARE:
        add("credential_stuffing", failures, [("auth_failures", failures)])
    if (window.not_found >= ENUMERATION_MIN_NOT_FOUND and window.distinct_paths >= ENUMERATION_MIN_PATHS
            and window.not_found / requests >= ENUMERATION_MIN_SHARE):
        not_found, paths = scores["not_found"].score(), scores["distinct_paths"].score("median")
        add("enumeration", min(not_found, paths), [("not_found", not_found), ("distinct_paths", paths)])
    run = [*previous[-(SCRAPING_WINDOWS - 1):], window]
    if len(run) == SCRAPING_WINDOWS and _contiguous(run) and all(_scrape_shaped(w) for w in run):
        paths = min(feature_scores(w, own, crowd)["distinct_paths"].score("median") for w in run)
        add("scraping", paths, [("distinct_paths", paths)])
    if is_credential(window.client) and window.distinct_addresses >= SHARING_MIN_ADDRESSES:
        addresses = scores["distinct_addresses"].score("median")
        add("token_sharing", addresses, [("distinct_addresses", addresses)])
    isolated = isolation is not None and isolation >= ISOLATION_CUTOFF
    if not found and isolated and window.requests >= ANOMALY_MIN_REQUESTS:
        name, worst = max(((name, s.score()) for name, s in scores.items()), key=lambda p: p[1])
        add("anomaly", worst, [(name, worst)])
    return found


def _scrape_shaped(window: ClientWindowFeatures) -> bool:
    return (window.requests >= SCRAPING_MIN_REQUESTS and window.ok_ratio >= SCRAPING_MIN_OK
            and window.distinct_paths / window.requests >= SCRAPING_MIN_NOVELTY)
