"""`latency_prediction`'s model: each backend's latency for this request, predicted from what is known before
sending it (method, path template, body size), learned online, and power-of-two-choices on the predictions.

Where `latency_aware` keeps one EWMA per backend, this keeps one per (backend, method, template, body-size
bucket), the buckets log2 of the body's length: a backend fast for small bodies and slow for large ones gets the
small ones. A prediction starts from the backend's own estimate and is refined by (backend, method, template),
then by the finest key, the more the more recent samples it has (half way at `min_samples`). Samples age: a key's
count decays over `horizon_s` seconds of the injected clock, so a key not seen for a while weighs less than a
coarser one (which the backend's other traffic keeps fresh) and, once even the backend's own count has decayed,
the backend is explored again as if new.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from math import exp
from random import Random
from typing import Generic, TypeVar

Clock = Callable[[], float]
BackendT = TypeVar("BackendT", bound=Hashable)
ALPHA = 0.2  # an EWMA over about the last five samples of a key once it has five
MIN_SAMPLES = 3.0
HORIZON_S = 60.0
EXPLORING_AT_ONCE = 1  # requests on their way to an unmeasured backend: the others go where it is known
TRIAL_TIMEOUT_S = 30.0  # a trial never reported (its request was cancelled, say) stops holding its slot after this


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    """What is known of a request before it is sent, for predicting its latency."""

    method: str
    template: str  # the route's path template, not the raw path: /users/{id}, not /users/42
    body_bytes: int

    @property
    def size_bucket(self) -> int:
        """log2 bucket of the body's length: 0 for none, 1 for 1 byte, 2 for 2-3, 3 for 4-7..."""
        return self.body_bytes.bit_length()


class _Estimate:
    """An EWMA of one key's latency and its decayed sample count."""

    __slots__ = ("seconds", "count", "at")

    def __init__(self) -> None:
        self.seconds = 0.0
        self.count = 0.0
        self.at = 0.0

    def weight(self, now: float, horizon: float) -> float:
        return self.count * exp(-(now - self.at) / horizon) if now > self.at else self.count

    def add(self, seconds: float, now: float, horizon: float) -> None:
        self.count = self.weight(now, horizon) + 1.0
        self.at = now
        # The plain mean until 1/count is below ALPHA: early samples are not pulled towards a zero start.
        self.seconds += (seconds - self.seconds) * max(ALPHA, 1.0 / self.count)


class LatencyPredictor(Generic[BackendT]):
    """Online latency estimates per backend and request shape; `choose` picks a backend for a request."""

    __slots__ = ("min_samples", "horizon_s", "trial_timeout_s", "_clock", "_estimates", "_exploring",
                 "_shape_trials")

    def __init__(self, clock: Clock = time.monotonic, min_samples: float = MIN_SAMPLES,
                 horizon_s: float = HORIZON_S, trial_timeout_s: float = TRIAL_TIMEOUT_S) -> None:
        self.min_samples = min_samples
        self.horizon_s = horizon_s
        self.trial_timeout_s = trial_timeout_s
        self._clock = clock
        self._estimates: dict[tuple[object, ...], _Estimate] = {}
        # When each trial of an unmeasured backend started, oldest first, until its outcome is observed.
        self._exploring: dict[BackendT, list[float]] = {}
        # A backend never measured for a request shape is tried on it once (then again after a horizon without
        # samples): without it, a backend slow for the shapes it happened to get first would never be tried on
        # the shapes it is fast for. {finest key: when its trial started}.
        self._shape_trials: dict[tuple[object, ...], float] = {}

    def predict(self, backend: BackendT, features: RequestFeatures) -> float | None:
        """Seconds this request should take on `backend`; None when the backend has no recent estimate at all
        (explore it). The backend's own estimate is refined by the (method, template) one, then by the body-size
        bucket's, each weighed by the square of its decayed sample count against `min_samples`'s: a shape seen once
        moves the prediction a tenth of the way towards what it took, `min_samples` times half of it, ten times
        nearly all of it. (Falling back to a
        coarser estimate outright would make a backend slow for one shape look fast for it again as soon as its few
        samples age, and send it that shape again and again.)"""
        now = self._clock()
        horizon = self.horizon_s
        estimates = self._estimates
        keys = _keys(backend, features)
        own = estimates.get(keys[-1])
        if own is None or own.weight(now, horizon) < 1.0:
            return None
        seconds = own.seconds
        prior = self.min_samples ** 2
        for key in (keys[1], keys[0]):  # coarse to fine
            estimate = estimates.get(key)
            if estimate is None:
                continue
            trust = estimate.weight(now, horizon) ** 2
            seconds = (trust * estimate.seconds + prior * seconds) / (trust + prior)
        return seconds

    def observe(self, backend: BackendT, features: RequestFeatures, seconds: float) -> None:
        """A request to `backend` answered after `seconds` (to the response head; a failure counts at the time
        it took, so a backend that fails fast still needs its breaker)."""
        now = self._clock()
        trials = self._exploring.get(backend)
        if trials:
            trials.pop(0)
        estimates = self._estimates
        self._shape_trials.pop(_keys(backend, features)[0], None)
        for key in _keys(backend, features):
            estimate = estimates.get(key)
            if estimate is None:
                estimate = estimates[key] = _Estimate()
            estimate.add(seconds, now, self.horizon_s)

    def choose(self, backends: Sequence[BackendT], features: RequestFeatures, rng: Random) -> BackendT:
        """A backend for this request: the lower prediction of two drawn at random (one of two, so that a crowd
        does not stampede onto the best-looking one); when one of them has no estimate, an unmeasured backend
        that no other request is exploring, or else the measured one of the two."""
        count = len(backends)
        if count == 1:
            return backends[0]
        if not count:
            raise ValueError("no backend to choose from")
        first = rng.randrange(count)
        second = rng.randrange(count - 1)
        if second >= first:
            second += 1
        a, b = backends[first], backends[second]
        a_seconds, b_seconds = self.predict(a, features), self.predict(b, features)
        now = self._clock()
        if a_seconds is not None and b_seconds is not None:
            for candidate in (a, b):
                if self._shape_unmeasured(candidate, features, now):
                    return candidate
            return a if a_seconds <= b_seconds else b
        unknown = [backend for backend in backends if len(self._trials(backend, now)) < EXPLORING_AT_ONCE
                   and self.predict(backend, features) is None]
        if unknown:
            chosen = unknown[rng.randrange(len(unknown))]
            self._exploring.setdefault(chosen, []).append(now)
            return chosen
        return b if a_seconds is None and b_seconds is not None else a

    def _shape_unmeasured(self, backend: BackendT, features: RequestFeatures, now: float) -> bool:
        """Whether `backend` has no recent sample of this request's shape and none on its way: then this request
        is its trial (counted as on its way until observed, or for `trial_timeout_s`)."""
        key = _keys(backend, features)[0]
        estimate = self._estimates.get(key)
        if estimate is not None and estimate.weight(now, self.horizon_s) >= 1.0:
            return False
        started = self._shape_trials.get(key)
        if started is not None and now - started < self.trial_timeout_s:
            return False
        self._shape_trials[key] = now
        return True

    def _trials(self, backend: BackendT, now: float) -> list[float]:
        """The trials of `backend` still waiting for their outcome (those older than `trial_timeout_s` are
        dropped: their requests will never report)."""
        trials = self._exploring.get(backend)
        if not trials:
            return []
        if now - trials[0] >= self.trial_timeout_s:
            trials[:] = [started for started in trials if now - started < self.trial_timeout_s]
        return trials


def _keys(backend: object, features: RequestFeatures) -> tuple[tuple[object, ...], ...]:
    """The keys of a request on a backend, finest first."""
    return ((backend, features.method, features.template, features.size_bucket),
            (backend, features.method, features.template), (backend,))
