"""Active health probes with httpx (the control-plane client): many at once, each outcome classified once.

A target is probed with HTTP/1.1 `GET` (judged by its status line), or, when it names a gRPC service, with gRPC's
health check over HTTP/2 (routes.health.grpc_health). httpx's exceptions are converted here, and only here, into
the reasons Rusta stores and shows: a status code, `timeout`, `refused`, `reset`, `invalid` (not HTTP) or `error`
(anything else, with its message); gRPC adds `grpc_serving`, `grpc_not_serving`, `grpc_status_N` and
`grpc_no_message`.
"""
from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from protocols.upstream.tls import backend_context
from routes.health import grpc_health

USER_AGENT = "rusta-health-check/1"


@dataclass(frozen=True)
class TlsOptions:
    """How an https backend's certificate is checked: its `tls` options (CA bundle, name, verify)."""

    ca: str = ""  # PEM text replacing the system's CAs; "": the system's
    server_name: str = ""  # the name sent (SNI) and verified; "": the URL's host
    verify: bool = True


@dataclass(frozen=True)
class ProbeTarget:
    """What to probe and how: one backend's health URL with its route's timeout and healthy statuses; with
    `grpc_service` (None: an HTTP probe) gRPC's health check of that service ("": the whole server)."""

    backend_id: int
    url: str
    timeout: float  # seconds, for the whole probe
    healthy_statuses: frozenset[int] | None = None  # None: any 2xx or 3xx
    grpc_service: str | None = None
    tls: TlsOptions = TlsOptions()

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
        return reason_text(self.reason, self.status_code)


def reason_text(reason: str, code: int | None) -> str:
    """`status 503`, `grpc_status_12`, `timeout`...: a probe's reason as state changes and the admin show it."""
    if reason == "status":
        return f"status {code}"
    if reason == "grpc_status":
        return f"grpc_status_{code}"
    return reason


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
    """Probe one target: GET the health URL and judge its status line only, or ask gRPC's health check."""
    started = timer()
    extensions = {"sni_hostname": target.tls.server_name} if target.tls.server_name else None
    try:
        async with asyncio.timeout(target.timeout):
            if target.grpc_service is None:
                async with client.stream("GET", target.url, timeout=target.timeout,
                                         extensions=extensions) as response:
                    verdict = grpc_health.Verdict(target.accepts(response.status_code), "status",
                                                  response.status_code)
            else:
                verdict = await _grpc_check(client, target, extensions)
    except (TimeoutError, httpx.HTTPError) as exc:
        reason, detail = classify_error(exc)
        return ProbeOutcome(target.backend_id, False, reason, latency_ms=(timer() - started) * 1000, detail=detail)
    latency = (timer() - started) * 1000
    return ProbeOutcome(target.backend_id, verdict.ok, verdict.reason, verdict.code, latency, verdict.detail)


async def _grpc_check(client: httpx.AsyncClient, target: ProbeTarget,
                      extensions: dict[str, str] | None) -> grpc_health.Verdict:
    """POST a HealthCheckRequest and judge the answer (its head, and its first message, read up to a limit)."""
    async with client.stream("POST", target.url, content=grpc_health.request_body(target.grpc_service or ""),
                             headers=grpc_health.HEADERS, timeout=target.timeout, extensions=extensions) as response:
        body = b""
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) >= grpc_health.MAX_ANSWER:
                break
        return grpc_health.judge(response.status_code, response.headers.get("grpc-status"),
                                 response.headers.get("grpc-message", ""), body)


def _client_key(target: ProbeTarget) -> tuple[bool, str, bool]:
    """Targets sharing this share a client: httpx fixes HTTP/2 and certificate checks per client."""
    return target.grpc_service is not None, target.tls.ca, target.tls.verify


def _client(key: tuple[bool, str, bool], transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    grpc, ca, verify = key
    context: ssl.SSLContext | bool = False
    if verify:
        context = backend_context(ca, verify=True)
    if grpc:
        # HTTP/2 only: prior knowledge over cleartext, ALPN h2 over TLS.
        return httpx.AsyncClient(transport=transport, http1=False, http2=True, verify=context,
                                 follow_redirects=False, trust_env=False, headers={"User-Agent": USER_AGENT})
    return httpx.AsyncClient(transport=transport, verify=context, follow_redirects=False, trust_env=False,
                             headers={"User-Agent": USER_AGENT})


async def probe_all(targets: Sequence[ProbeTarget], transport: httpx.AsyncBaseTransport | None = None,
                    timer: Callable[[], float] = time.perf_counter) -> list[ProbeOutcome]:
    """Probe every target concurrently, one client per kind of target; the run lasts about the longest timeout."""
    if not targets:
        return []
    keys = {_client_key(target) for target in targets}
    clients: dict[tuple[bool, str, bool], httpx.AsyncClient] = {}
    try:
        for key in keys:
            clients[key] = _client(key, transport)
        return list(await asyncio.gather(*(probe(clients[_client_key(t)], t, timer) for t in targets)))
    finally:
        for client in clients.values():
            await client.aclose()
def run_probes(targets: Sequence[ProbeTarget], transport: httpx.AsyncBaseTransport | None = None,
               timer: Callable[[], float] = time.perf_counter) -> list[ProbeOutcome]:
    """`probe_all` from synchronous code (a Celery task, a management command)."""
    return asyncio.run(probe_all(targets, transport, timer))
