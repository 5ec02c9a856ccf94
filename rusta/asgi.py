"""The two ASGI applications: the proxy listener (data plane) and the admin listener (Django, API, metrics).

Proxy traffic is routed to the gateway's own ASGI callable at the ProtocolTypeRouter level, so it never passes
through Django's request handler, middleware or the per-message thread hop of Channels consumers.
"""
from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rusta.settings")
django.setup()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

from protocols.dataplane import DataPlane, ProxyOptions  # noqa: E402
from protocols.health import HEALTH_PATHS, HealthApp, HealthLimits  # noqa: E402
from protocols.http import parse_networks  # noqa: E402
from protocols.http.proxy import ProxyApp  # noqa: E402
from protocols.recorder import NullRecorder, recorder  # noqa: E402
from protocols.table import live  # noqa: E402
from protocols.tracing.otlp import OtlpExporter  # noqa: E402
from protocols.websocket import WebSocketProxy  # noqa: E402

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class HealthFirst:
    """Answers /health, /ready and /live with `health` before the wrapped app sees the request (no query, no
    middleware)."""

    def __init__(self, app: ASGIApp, health: HealthApp) -> None:
        self.app = app
        self.health = health

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in HEALTH_PATHS:
            await self.health(scope, receive, send)
            return
        await self.app(scope, receive, send)


def health_limits() -> HealthLimits:
    """How stale the health paths let the table's source and the background work get, read from settings."""
    return HealthLimits(ready_stale_after=settings.RUSTA_READY_STALE_AFTER,
                        background_stale_after=settings.RUSTA_BACKGROUND_STALE_AFTER)


def proxy_options(https_port: int | None = None) -> ProxyOptions:
    """The data plane's options, read from settings once per process. `https_port` is the TLS listener's port
    (None: this process has none); plain-HTTP redirects go to RUSTA_TLS_REDIRECT_PORT when it is set (a load
    balancer publishes another port), else to that port, else to 443."""
    redirect = settings.RUSTA_TLS_REDIRECT_PORT or https_port or 443
    return ProxyOptions(
        trusted_proxies=parse_networks(settings.RUSTA_TRUSTED_PROXIES),
        access_log=settings.RUSTA_ACCESS_LOG,
        pool_size=settings.RUSTA_UPSTREAM_POOL_SIZE,
        state=live,
        recorder=recorder if settings.RUSTA_METRICS_RECORD else NullRecorder(),
        redis_url=settings.REDIS_URL,
        # OTLP span export, on with OpenTelemetry's standard variables (OTEL_EXPORTER_OTLP_ENDPOINT...);
        # one exporter, and its thread, per worker process. A bad value raises here, naming the variable.
        spans=OtlpExporter.from_env(os.environ),
        health=health_limits(),
        # Discovered backend addresses follow the same rule as configured ones (routes.network_safety).
        allow_link_local_backends=settings.RUSTA_ALLOW_LINK_LOCAL_BACKENDS,
        tls=https_port is not None,
        https_port=redirect,
        abuse_window_s=settings.RUSTA_ABUSE_WINDOW_S,
        abuse_max_clients=settings.RUSTA_ABUSE_MAX_CLIENTS,
    )


class ProxyListenerApp:
    """The proxy listener's ASGI app: "http" scopes to ProxyApp, "websocket" scopes to WebSocketProxy.

    Channels' ProtocolTypeRouter does the same with more work on every request (its mapping, and a check that
    the app is a single callable)."""

    def __init__(self, http: ProxyApp, websocket: WebSocketProxy) -> None:
        self.http = http
        self.websocket = websocket

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "websocket":
            await self.websocket(scope, receive, send)
        else:
            raise ValueError(f"the proxy listener serves 'http' and 'websocket' scopes, not {kind!r}")


def build_proxy_application(dataplane: DataPlane | None = None, *, proxy: ProxyApp | None = None,
                            websocket: WebSocketProxy | None = None) -> ProxyListenerApp:
    """The proxy listener: "http" scopes to ProxyApp, "websocket" scopes to WebSocketProxy, both on one
    DataPlane (built from settings when not given), so they share the table's plan, breakers, in-flight counts,
    JWT policies and rate-limit counters. Call the WebSocket app's aclose() at shutdown, before the server's
    own, so tunnels close with 1001."""
    dataplane = dataplane or DataPlane(proxy_options())
    return ProxyListenerApp(proxy or ProxyApp(dataplane=dataplane), websocket or WebSocketProxy(dataplane))


def build_admin_application() -> ProtocolTypeRouter:
    """The admin listener: Django (admin, API, /metrics) over HTTP, the live-metrics WebSocket for the dashboard."""
    from metrics.routing import admin_websocket_application

    django_app = ASGIStaticFilesHandler(get_asgi_application())
    return ProtocolTypeRouter({"http": HealthFirst(django_app, HealthApp(health_limits(), live)),
                               "websocket": admin_websocket_application()})


admin_application = build_admin_application()
application = admin_application
