"""The HTTP data plane: the proxy listener's ASGI application and its helpers."""
from __future__ import annotations

from protocols.http.accesslog import AccessLog
from protocols.http.headers import parse_networks
from protocols.http.proxy import ProxyApp, ProxyOptions

__all__ = ["AccessLog", "ProxyApp", "ProxyOptions", "parse_networks"]
