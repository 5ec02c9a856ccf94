"""The HTTP data plane: the proxy listener's ASGI application (`protocols.http.proxy.ProxyApp`) and its helpers.

The package imports only its leaf helpers: the proxy needs the route table's plan (protocols.plan), whose modules
import helpers of this package, so ProxyApp is imported from its own module.
"""
from __future__ import annotations

from protocols.http.accesslog import AccessLog
from protocols.http.headers import parse_networks

__all__ = ["AccessLog", "parse_networks"]
