"""`anomaly_detection`'s detector: each request scored against its client's own past and the route's other clients."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from math import exp, log2, sqrt
from math import inf as INF

DEFAULT_WINDOW_S = 10.0
DEFAULT_THRESHOLD = 6.0
# The first words of every reason, so that an operator's counters by reason stay few.
RATE, PATHS, ERRORS, BODY = "request rate", "distinct paths", "error ratio", "body size"
REASON_KINDS = (RATE, PATHS, ERRORS, BODY)

BUCKETS = 10  # the window slides by a tenth of itself
MIN_REQUESTS = 3  # a client's first requests are never anomalous: there is nothing to judge them by yet
PRIOR = 2.0  # variance added to every count test, so that a handful of requests is never significant
DISPERSION = 2.0  # requests come a page's worth at a time: a count's variance is about twice its mean, not once
SPREAD = 0.1  # and a client's level itself varies, by about sqrt(0.1) ~ 30%
BASELINE_ALPHA = 0.1  # a client's own baseline: an EWMA over about its last ten windows
LEARN_CLIP = 2.0  # a baseline learns a window's figure up to twice what was typical for it (see _Client.learn)
POP_SAMPLES = 1024  # the route's population: its clients' latest finished windows, this many
POP_MIN = 16  # finished windows needed before the population is used as a reference
POP_REFRESH = 128  # finished windows between two refreshes of the population's quantiles
POP_QUANTILE = 0.95  # volumes are compared to the crowd's top (heavy but normal clients exist), not its middle
# ...and a newcomer's, until its first window ends, to the crowd's very top: it may be one of the heavy clients.
NEWCOMER_QUANTILE = 0.99
ERROR_FLOOR = 0.05  # an error ratio is judged against at least this: a route where almost nothing fails
ERROR_PRIOR = 20.0  # a client's own error ratio starts as ERROR_FLOOR over this many answers
ERROR_VARIANCE = 1.0  # the same for errors, rarer than requests: eight 404s in a row are a scan, five are not
# Answers are counted with this memory (seconds, or the window if longer): a ratio needs a dozen of them before it
# means anything, which a slow client would not gather in a short window.
ERROR_HORIZON_S = 10.0
# The route's own recent error ratio, from the answers to clients that did not look suspicious (a score of half the
# threshold), is a reference too once it stands on this many answers: in an outage every client fails alike, while
# scanners, suspicious after a few errors, do not raise it for each other.
ROUTE_MIN_ANSWERS = 20.0
SUSPICIOUS = 0.5
BODY_SCORE_PER_DOUBLING = 1.5  # a mean body 16 times the typical one scores 6, the default threshold
BODY_FLOOR = 1000.0  # bytes: on a route whose bodies are tiny or absent, a few hundred bytes are not an anomaly
MAX_PATHS = 64  # distinct paths remembered per client (their hashes); beyond, a new one is counted, not remembered

# One client's ring holds, per bucket: requests, body bytes, and how many of the client's distinct paths were last
# seen in that bucket. Flat, in one list, because a detector may hold 50,000 of them.
FIELDS = 3
_REQ, _BODY, _LAST = range(FIELDS)
_EMPTY = [0] * FIELDS


@dataclass(frozen=True, slots=True)
class Verdict:
    """How unusual one request is: `score` is the largest of its features' scores, comparable to the threshold;
    `reasons` describe the features at or above it, worst first, each starting with one of `REASON_KINDS`."""

    anomalous: bool
    score: float
    reasons: tuple[str, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        """The reasons' kinds (their first words), for counters."""
        return tuple(kind for reason in self.reasons for kind in REASON_KINDS if reason.startswith(kind))


QUIET = Verdict(False, 0.0, ())


class _Recent:
    """Errors and answers counted with exponentially fading weights (time constant `tau` seconds)."""

    __slots__ = ("errors", "answers", "at")

    def __init__(self, now: float) -> None:
        self.errors = self.answers = 0.0
        self.at = now

    def add(self, error: bool, now: float, tau: float) -> None:
        keep = exp((self.at - now) / tau) if now > self.at else 1.0
        self.answers = self.answers * keep + 1.0
        self.errors = self.errors * keep + error
        self.at = max(self.at, now)

    def as_of(self, now: float, tau: float) -> tuple[float, float]:
        keep = exp((self.at - now) / tau) if now > self.at else 1.0
        return self.errors * keep, self.answers * keep


class _Client:
    """A client's sliding window (`BUCKETS` buckets, totals kept), its recent answers, and its baseline learned from
    its earlier windows (which start at its first request, so that its first window is a whole one)."""

    __slots__ = ("bucket", "origin", "first_seen", "seen", "ring", "requests", "body", "distinct", "paths",
                 "errors", "answers", "recent", "last_score", "windows", "own_requests",
                 "own_distinct", "own_body", "own_errors", "own_answers", "flagged", "typical",
                 "typical_as_of")

    def __init__(self, bucket: int, now: float) -> None:
        self.bucket = bucket  # the bucket the ring's newest slot holds
        self.origin = bucket
        self.first_seen = now
        self.seen = 0
        self.ring = [0] * (BUCKETS * FIELDS)
        self.requests = self.body = self.distinct = 0
        self.paths: dict[int, int] = {}  # hash(path) -> the bucket it was last seen in
        self.errors = self.answers = 0  # in the current window
        self.recent = _Recent(now)
        self.last_score = 0.0
        self.windows = 0  # finished windows learned
        self.own_requests = self.own_distinct = 0.0  # per window
        self.own_body = 0.0  # mean bytes per request
        self.own_errors = self.own_answers = 0.0  # sums decayed by window
        self.flagged = False  # a request in the current window was anomalous
        # AnomalyDetector._references, kept until the window finishes or the population's version changes.
        self.typical = (-1.0, -1.0, -1.0, -1.0)
        self.typical_as_of = -1

    @property
    def own_error(self) -> float:
        """The client's usual error ratio: ERROR_FLOOR until it has had a few dozen answers."""
        return (self.own_errors + ERROR_PRIOR * ERROR_FLOOR) / (self.own_answers + ERROR_PRIOR)

    def learn(self, typical: tuple[float, float, float, float]) -> None:
        """Fold the window the ring holds (not an empty one) into the baseline, each feature's figure clipped to
        `LEARN_CLIP` times what was `typical` for it (requests, distinct paths, error ratio, mean body; infinite
        when unknown).

        Clipped, an attack does not become the client's norm while it lasts (the baseline moves a tenth of the way
        towards at most twice what was typical), while a lasting change of habits is accepted after some minutes
        and a slow drift passes unclipped. The volumes' first windows are plain means, so one is enough to begin.
        """
        requests, distinct, error, body = typical
        self.windows += 1
        step = max(BASELINE_ALPHA, 1.0 / self.windows)
        self.own_requests += step * (min(self.requests, requests) - self.own_requests)
        self.own_distinct += step * (min(self.distinct, distinct) - self.own_distinct)
        self.own_body += step * (min(self.body / self.requests, body) - self.own_body)
        keep = 1.0 - BASELINE_ALPHA
        self.own_errors = self.own_errors * keep + min(self.errors, error * self.answers)
        self.own_answers = self.own_answers * keep + self.answers
        self.errors = self.answers = 0

    def clear(self) -> None:
        self.ring[:] = _EMPTY * BUCKETS
        self.requests = self.body = self.distinct = self.errors = self.answers = 0
        self.paths.clear()


class _Population:
    """The route's clients' latest finished windows and, refreshed every `POP_REFRESH` of them, the references a
    client is compared to: the top of the crowd for volumes, the middle for the error ratio."""

    __slots__ = ("window_s", "rates", "distincts", "ratios", "bodies", "added", "answered", "pending", "version",
                 "rate", "distinct", "error", "body", "top_rate", "top_distinct")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self.rates: list[float] = []  # requests per second
        self.distincts: list[float] = []
        self.ratios: list[float] = []  # only windows with answers
        self.bodies: list[float] = []
        self.added = self.answered = self.pending = self.version = 0
        # The references; negative while there are not enough windows to compare to.
        self.rate = self.distinct = self.error = self.body = self.top_rate = self.top_distinct = -1.0

    def add(self, requests: int, distinct: int, errors: int, answers: int, body: int) -> None:
        _put(self.rates, self.added, requests / self.window_s)
        _put(self.distincts, self.added, float(distinct))
        _put(self.bodies, self.added, body / requests)
        if answers:
            _put(self.ratios, self.answered, errors / answers)
            self.answered += 1
        self.added += 1
        self.pending += 1
        if self.pending >= POP_REFRESH or (self.rate < 0 and self.added >= POP_MIN):
            self.pending = 0
            self.version += 1
            self.rate, self.top_rate = _quantiles(self.rates, POP_QUANTILE, NEWCOMER_QUANTILE)
            self.distinct, self.top_distinct = _quantiles(self.distincts, POP_QUANTILE, NEWCOMER_QUANTILE)
            self.body = _quantiles(self.bodies, POP_QUANTILE)[0]
            self.error = max(ERROR_FLOOR, _quantiles(self.ratios, 0.5)[0]) if self.ratios else ERROR_FLOOR


def _put(ring: list[float], index: int, value: float) -> None:
    if len(ring) < POP_SAMPLES:
        ring.append(value)
    else:
        ring[index % POP_SAMPLES] = value


def _quantiles(values: list[float], *qs: float) -> tuple[float, ...]:
    ordered = sorted(values)
    return tuple(ordered[int(q * (len(ordered) - 1))] for q in qs)


def _excess(count: float, expected: float) -> float:
    """How far `count` is above `expected`, in overdispersed-Poisson deviations; 0 when it is not above."""
    if count <= expected:
        return 0.0
    return (count - expected) / sqrt(DISPERSION * expected + SPREAD * expected * expected + PRIOR)


def _error_excess(errors: float, answers: float, ratio: float) -> float:
    """How far `errors` out of `answers` is above `ratio`, in binomial deviations; 0 when it is not above."""
    expected = answers * ratio
    if errors <= expected:
        return 0.0
    return (errors - expected) / sqrt(expected * (1.0 - ratio) + ERROR_VARIANCE)


class AnomalyDetector:
    """One route's clients, each judged on four features of its last `window_s` seconds: request rate, distinct
    paths, error ratio (over `ERROR_HORIZON_S` if longer) and mean body size.

    A feature is anomalous when it is unusual both for the route's crowd (its 95th percentile for volumes, its
    median or current ratio for errors) and for the client itself (an EWMA of its earlier windows): comparing to
    the larger of the two references is taking the smaller of the two scores. So a client always heavier than the
    crowd but steady is judged by its own past, a light client that becomes as busy as the crowd's busiest is not
    flagged, and neither is anyone in an outage. The request rate is also judged over the last two buckets, so
    that a burst is seen within a second or two rather than once it fills the window.

    Each call costs a few dictionary and arithmetic operations; population quantiles are recomputed from at most
    `POP_SAMPLES` values every `POP_REFRESH` finished windows. Not thread-safe: one event loop calls it.
    """

    __slots__ = ("window_s", "threshold", "max_clients", "scored", "flagged", "_clock", "_width", "_error_tau",
                 "_clients", "_population", "_answers")

    def __init__(self, *, window_s: float = DEFAULT_WINDOW_S, threshold: float = DEFAULT_THRESHOLD,
                 clock: Callable[[], float] = time.monotonic, max_clients: int = 50_000) -> None:
        if window_s <= 0 or max_clients < 1:
            raise ValueError("window_s must be positive and max_clients at least 1")
        self.window_s = window_s
        self.threshold = threshold
        self.max_clients = max_clients
        self.scored = self.flagged = 0
        self._clock = clock
        self._width = window_s / BUCKETS
        self._error_tau = max(window_s, ERROR_HORIZON_S)
        # Least recently seen first: move_to_end on every request, popitem(last=False) to evict.
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._population = _Population(window_s)
        self._answers = _Recent(0.0)  # the route's, to clients that did not look suspicious

    def __contains__(self, client: object) -> bool:
        return client in self._clients

    def score(self, client: str, path: str, body_bytes: int) -> Verdict:
        """One request arriving from `client` (an IP or a consumer id) for `path` (the raw request path, query
        excluded) with a body of `body_bytes`: update the client's and the route's statistics and judge it."""
        now = self._clock()
        state = self._client(client, now)
        self.scored += 1
        bucket = state.bucket  # not the clock's: a clock read before an earlier call counts in that call's bucket
        ring = state.ring
        slot = bucket % BUCKETS * FIELDS
        ring[slot + _REQ] += 1
        ring[slot + _BODY] += body_bytes
        state.requests += 1
        state.body += body_bytes
        self._see_path(state, path, bucket, slot)
        state.seen += 1
        if state.seen <= MIN_REQUESTS:
            return QUIET
        scores = self._scores(state, now, slot)
        worst = state.last_score = max(scores)
        if worst < self.threshold:
            return Verdict(False, worst, ()) if worst else QUIET
        state.flagged = True
        self.flagged += 1
        return Verdict(True, worst, self._reasons(state, now, slot, scores))

    def outcome(self, client: str, status: int) -> None:
        """The answer to that client's request (feeds the error ratio: 4xx/5xx count as errors)."""
        state = self._clients.get(client)
        if state is None:  # evicted since its request (or never scored): nothing to attach the answer to
            return
        now = self._clock()
        bucket = int(now // self._width)
        if bucket > state.bucket:
            self._advance(state, bucket)
        error = status >= 400
        state.answers += 1
        state.errors += error
        state.recent.add(error, now, self._error_tau)
        if state.last_score < self.threshold * SUSPICIOUS:
            self._answers.add(error, now, self._error_tau)

    def stats(self) -> dict[str, float]:
        """For the operator: clients tracked, requests scored and flagged, and the population's references
        (-1 until enough windows have finished)."""
        population = self._population
        return {"clients": float(len(self._clients)), "scored": float(self.scored), "flagged": float(self.flagged),
                "population_windows": float(population.added), "population_rate": population.rate,
                "population_distinct_paths": population.distinct, "population_error_ratio": population.error,
                "population_body_bytes": population.body}

    def _client(self, client: str, now: float) -> _Client:
        """The client's state, its window slid to now; a new one, evicting the least recently seen if full."""
        bucket = int(now // self._width)
        clients = self._clients
        state = clients.get(client)
        if state is None:
            if len(clients) >= self.max_clients:
                clients.popitem(last=False)
            state = clients[client] = _Client(bucket, now)
        else:
            clients.move_to_end(client)
            if bucket > state.bucket:
                self._advance(state, bucket)
        return state

    def _see_path(self, state: _Client, path: str, bucket: int, slot: int) -> None:
        """Count `path` among the window's distinct paths: each path is counted in the bucket it was last seen in,
        so a bucket leaving the window takes with it exactly the paths not seen since."""
        paths = state.paths
        ring = state.ring
        key = hash(path)  # a path's hash is cached in the string; an int also costs less to keep than the string
        last = paths.get(key)
        if last is not None and last > bucket - BUCKETS:
            if last == bucket:
                return
            ring[last % BUCKETS * FIELDS + _LAST] -= 1
        else:
            state.distinct += 1
            if len(paths) >= MAX_PATHS:
                # Forget the paths that left the window; a client with more than MAX_PATHS paths per window (a scan)
                # is counted still, its new paths are simply not remembered (so a repeat of one counts twice).
                oldest = bucket - BUCKETS
                for stale in [known for known, seen in paths.items() if seen <= oldest]:
                    del paths[stale]
                if len(paths) >= MAX_PATHS:
                    ring[slot + _LAST] += 1
                    return
        paths[key] = bucket
        ring[slot + _LAST] += 1

    def _advance(self, state: _Client, bucket: int) -> None:
        """Slide the client's window to `bucket`, finishing each of its windows on the way (the ring then holds
        exactly that window); after a long silence, clear it at once. Empty windows are not learned: a client's
        baseline is what it does when it comes, so that a heavy client back from a pause is still known as one."""
        ring = state.ring
        current = state.bucket
        while current < bucket:
            if (current + 1 - state.origin) % BUCKETS == 0:
                self._finish_window(state)
                if bucket - current > BUCKETS:  # the next window is empty too, and maybe more after it
                    state.clear()
                    current = bucket
                    break
            current += 1
            slot = current % BUCKETS * FIELDS
            state.requests -= ring[slot + _REQ]
            state.body -= ring[slot + _BODY]
            state.distinct -= ring[slot + _LAST]
            ring[slot: slot + FIELDS] = _EMPTY
        state.bucket = current

    def _finish_window(self, state: _Client) -> None:
        """Learn the window the ring holds; add it to the population unless a request in it was anomalous."""
        if state.requests:
            if not state.flagged:
                self._population.add(state.requests, state.distinct, state.errors, state.answers, state.body)
            rate, distinct, error, body = self._references(state)
            state.learn((LEARN_CLIP * max(rate * self.window_s, 1.0) if rate >= 0 else INF,
                         LEARN_CLIP * max(distinct, 1.0) if distinct >= 0 else INF,
                         LEARN_CLIP * error, LEARN_CLIP * body if body >= 0 else INF))
        else:
            state.errors = state.answers = 0  # answers to the window before, come late
        state.flagged = False
        state.typical_as_of = -1

    def _references(self, state: _Client) -> tuple[float, float, float, float]:
        """What is typical for this client, the larger of the population's and its own (negative: unknown):
        requests per second, distinct paths per window, error ratio, mean body bytes."""
        population = self._population
        if state.typical_as_of == population.version:
            return state.typical
        body = population.body
        if state.windows:
            rate = max(population.rate, state.own_requests / self.window_s)
            distinct = max(population.distinct, state.own_distinct)
            body = max(body, state.own_body)
        else:
            rate, distinct = population.top_rate, population.top_distinct
        if body >= 0:
            body = max(body, BODY_FLOOR)
        state.typical = rate, distinct, max(population.error, state.own_error), body
        state.typical_as_of = population.version
        return state.typical

    def _spans(self, state: _Client, now: float) -> tuple[float, float]:
        """Seconds covered by the whole window and by its last two buckets (less for a client seen only since)."""
        width = self._width
        into = max(0.0, now - state.bucket * width)
        age = max(0.0, now - state.first_seen) + width
        return min((BUCKETS - 1) * width + into, age), min(width + into, age)

    def _short_count(self, state: _Client, slot: int) -> int:
        return state.ring[slot + _REQ] + state.ring[(state.bucket - 1) % BUCKETS * FIELDS + _REQ]

    def _route_error(self, now: float, typical: float) -> float:
        """`typical`, or the route's recent error ratio if higher and it stands on enough answers."""
        errors, answers = self._answers.as_of(now, self._error_tau)
        return max(typical, errors / answers) if answers >= ROUTE_MIN_ANSWERS else typical

    def _scores(self, state: _Client, now: float, slot: int) -> tuple[float, float, float, float]:
        rate, distinct, error, body = self._references(state)
        rate_score = distinct_score = error_score = body_score = 0.0
        if rate >= 0:
            span, short = self._spans(state, now)
            rate_score = max(_excess(state.requests, rate * span),
                             _excess(self._short_count(state, slot), rate * short))
        if distinct >= 0:
            distinct_score = _excess(state.distinct, distinct)
        if state.recent.errors >= 1.0:
            error_score = _error_excess(*state.recent.as_of(now, self._error_tau), self._route_error(now, error))
        if body >= 0 and state.requests >= MIN_REQUESTS and state.body:
            mean = state.body / state.requests
            if mean > body:
                body_score = log2((1.0 + mean) / (1.0 + body)) * BODY_SCORE_PER_DOUBLING
        return rate_score, distinct_score, error_score, body_score

    def _reasons(self, state: _Client, now: float, slot: int, scores: tuple[float, ...]) -> tuple[str, ...]:
        """The features at or above the threshold, worst first, each with its figures and what is typical."""
        rate, distinct, error, body = self._references(state)
        texts = []
        for score, kind in sorted(zip(scores, REASON_KINDS, strict=True), reverse=True):
            if score < self.threshold:
                break
            if kind == RATE:
                span, short = self._spans(state, now)
                count, seconds = state.requests, span
                if _excess(self._short_count(state, slot), rate * short) > _excess(count, rate * span):
                    count, seconds = self._short_count(state, slot), short
                texts.append(f"{RATE} {_figure(count / seconds)}/s, typical {_figure(rate)}/s")
            elif kind == PATHS:
                texts.append(f"{PATHS} {state.distinct} in {self.window_s:g} s, typical {_figure(distinct)}")
            elif kind == ERRORS:
                errors, answers = state.recent.as_of(now, self._error_tau)
                error = self._route_error(now, error)
                texts.append(f"{ERRORS} {errors / answers:.0%} of the last {answers:.0f} answers, "
                             f"typical {error:.0%}")
            else:
                texts.append(f"{BODY} {_size(state.body / state.requests)} mean, typical {_size(body)}")
        return tuple(texts)


def _figure(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.2g}"


def _size(size: float) -> str:
    for unit in ("B", "kB", "MB"):
        if size < 1000:
            return f"{_figure(size)} {unit}"
        size /= 1000
    return f"{_figure(size)} GB"
