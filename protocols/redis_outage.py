"""Outage bookkeeping shared by the Redis-backed stores: after a failure Redis is left alone, then probed once."""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class RedisOutage:
    """Whether a store should try Redis now, and the two warnings an operator sees (down, back).

    After a failure the store leaves Redis alone for `retry_interval_s` (`skipping()` says True, so each call
    fails fast to the store's fallback), then lets one call through as the probe; the probe's success
    (`succeeded()`) makes it healthy again. No background loop runs: the traffic itself probes, so the store
    is back on Redis within about `retry_interval_s` of Redis returning.

    `what` names the store in the logs ("Redis cache store"), `fallback` says what happens meanwhile
    ("serving without the cache"); `logger` is the store's own. `failures` counts `failed()` calls.
    """

    def __init__(self, what: str, url: str, fallback: str, *, retry_interval_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic, logger: logging.Logger = log) -> None:
        self.log = logger
        self.what = what
        self.url = url
        self.fallback = fallback
        self.retry_interval_s = retry_interval_s
        self.clock = clock
        self.healthy = True
        self.failures = 0
        self._retry_at = 0.0

    def skipping(self) -> bool:
        """True while Redis should be left alone; the first call after the interval is the probe (False)."""
        if self.healthy:
            return False
        moment = self.clock()
        if moment < self._retry_at:
            return True
        self._retry_at = moment + self.retry_interval_s  # this call is the one probe
        return False

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.healthy:
            self.log.warning("%s at %s failed (%s); %s for %.1f s", self.what, redacted(self.url),
                        str(exc) or type(exc).__name__, self.fallback, self.retry_interval_s)
        self.healthy = False
        self._retry_at = self.clock() + self.retry_interval_s

    def succeeded(self) -> None:
        if not self.healthy:
            self.healthy = True
            self.log.warning("%s at %s is back", self.what, redacted(self.url))


def redacted(url: str) -> str:
    """The URL without its credentials, for logs."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = rest.split("@", 1)[1]
    return scheme + sep + rest
