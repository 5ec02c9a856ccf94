"""The HTTP data plane: the proxy listener's ASGI application and its helpers."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.http.accesslog import AccessLog
from protocols.http.headers import parse_networks

if TYPE_CHECKING:
    from protocols.dataplane import ProxyOptions
    from protocols.http.proxy import ProxyApp


def __getattr__(name: str) -> Any:
    # Imported on first use: the proxy needs the plan (protocols.plan), whose modules import helpers of this
    # package, so importing it here, eagerly, would make `import protocols.plan` circular.
    if name == "ProxyApp":
        from protocols.http.proxy import ProxyApp

        return ProxyApp
    if name == "ProxyOptions":
        from protocols.dataplane import ProxyOptions

        return ProxyOptions
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["AccessLog", "ProxyApp", "ProxyOptions", "parse_networks"]
