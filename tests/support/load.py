"""Bounded client load on loopback: a few threads with keep-alive connections, stopped by time and by count."""
from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request as the client saw it: when it started and ended (monotonic), its status (0: no answer)."""

    started: float
    ended: float
    status: int
    body: bytes = b""

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """`threads` clients sending `method target` back to back until `seconds` pass or `max_requests` are sent.

    `during(elapsed)` is called from the first client thread between its requests (to kill a backend at 1 s...).
    """

    port: int
    target: str
    threads: int = 4
    seconds: float = 3.0
    max_requests: int = 20_000
    method: str = "GET"
    body: bytes | None = None
    timeout: float = 5.0
    outcomes: list[Outcome] = field(default_factory=list)

    def run(self, during: Callable[[float], None] | None = None) -> list[Outcome]:
        self.started = time.monotonic()
        self._sent = 0
        self._lock = threading.Lock()
        workers = [threading.Thread(target=self._client, args=(during if i == 0 else None,), daemon=True)
                   for i in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(self.seconds + self.timeout + 5)
        return self.outcomes

    def _take_turn(self) -> bool:
        with self._lock:
            if self._sent >= self.max_requests or time.monotonic() - self.started >= self.seconds:
                return False
            self._sent += 1
            return True

    def _client(self, during: Callable[[float], None] | None) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        try:
            while self._take_turn():
                if during is not None:
                    during(time.monotonic() - self.started)
                started = time.monotonic()
                try:
                    conn.request(self.method, self.target, body=self.body)
                    response = conn.getresponse()
                    status, body = response.status, response.read()
                    if response.will_close:
                        conn.close()
                except (OSError, http.client.HTTPException):
                    status, body = 0, b""
                    conn.close()
                with self._lock:
                    self.outcomes.append(Outcome(started, time.monotonic(), status, body))
        finally:
            conn.close()


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` (0..1) of them fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]
