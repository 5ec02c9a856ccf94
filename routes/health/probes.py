"""Active HTTP health probes with httpx (the control-plane client): many at once, each outcome classified once.

httpx's exceptions are converted here, and only here, into the reasons Rusta stores and shows: a status code,
`timeout`, `refused`, `reset`, `invalid` (not HTTP) or `error` (anything else, with its message).
"""
from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

USER_AGENT = "rusta-health-check/1"


@dataclass(frozen=True)
class ProbeTarget:
    """What to probe and how: one backend's health URL with its route's timeout and healthy statuses."""

    backend_id: int
    url: str
    timeout: float  # seconds, for the whole probe
    healthy_statuses: frozenset[int] | None = None  # None: any 2xx or 3xx

    def accepts(self, status: int) -> bool:
        if self.healthy_statuses is None:
            return 200 <= status < 400
        return status in self.healthy_statuses


@dataclass(frozen=True)
class ProbeOutcome:
    """The result of one probe; `reason` is one of routes.health.models.ProbeReason."""

    backend_id: int
    ok: bool
    reason: str
    status_code: int | None = None
    latency_ms: float | None = None
    detail: str = ""

    @property
    def text(self) -> str:
        return f"status {self.status_code}" if self.reason == "status" else self.reason


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def classify_error(exc: Exception) -> tuple[str, str]:
    """(reason, detail) of a failed probe."""
    detail = str(exc)[:200] or type(exc).__name__
    if isinstance(exc, (TimeoutError, httpx.TimeoutException)):
        return "timeout", detail
    if isinstance(exc, httpx.ConnectError):
        if _caused_by(exc, ConnectionRefusedError) or "refused" in detail.lower():
            return "refused", detail
        return "error", detail
    if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
        return "reset", detail
    if isinstance(exc, httpx.RemoteProtocolError):
        # h11 says "disconnected" when the peer closed before answering; anything else is a malformed answer.
        return ("reset" if "disconnected" in detail.lower() else "invalid"), detail
    return "error", detail


async def probe(client: httpx.AsyncClient, target: ProbeTarget,
                timer: Callable[[], float] = time.perf_counter) -> ProbeOutcome:
    """GET the health URL and judge the status line only: the body is never read."""
    started = timer()
    try:
        async with asyncio.timeout(target.timeout):
            async with client.stream("GET", target.url, timeout=target.timeout) as response:
                status = response.status_code
    except (TimeoutError, httpx.HTTPError) as exc:
        reason, detail = classify_error(exc)
        return ProbeOutcome(target.backend_id, False, reason, latency_ms=(timer() - started) * 1000, detail=detail)
    latency = (timer() - started) * 1000
    return ProbeOutcome(target.backend_id, target.accepts(status), "status", status, latency)


async def probe_all(targets: Sequence[ProbeTarget], transport: httpx.AsyncBaseTransport | None = None,
                    timer: Callable[[], float] = time.perf_counter) -> list[ProbeOutcome]:
    """Probe every target concurrently with one client; the whole run lasts about the longest timeout."""
    if not targets:
        return []
    async with httpx.AsyncClient(transport=transport, follow_redirects=False, trust_env=False,
                                 headers={"User-Agent": USER_AGENT}) as client:
        return list(await asyncio.gather(*(probe(client, target, timer) for target in targets)))


def run_probes(targets: Sequence[ProbeTarget], transport: httpx.AsyncBaseTransport | None = None,
               timer: Callable[[], float] = time.perf_counter) -> list[ProbeOutcome]:
    """`probe_all` from synchronous code (a Celery task, a management command)."""
    return asyncio.run(probe_all(targets, transport, timer))
