"""Refuses backends (and JWKS URLs) at link-local or cloud metadata addresses unless the operator allowed them.

Allowed only by the environment (`RUSTA_ALLOW_LINK_LOCAL_BACKENDS=true`), not by a route flag: the point is
that a leaked API token or an operator account cannot point the gateway at 169.254.169.254 and read the host's
cloud credentials through it. The classification itself is protocols.guards.egress (pure, also usable on the
resolved address at connect time, which is what stops a DNS name that resolves there).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from django.conf import settings

from protocols.guards.egress import link_local_reason

SETTING = "RUSTA_ALLOW_LINK_LOCAL_BACKENDS"


def allowed() -> bool:
    return bool(getattr(settings, SETTING, False))


def host_error(host: str) -> str | None:
    """Why a backend host is refused, or None (always None when the environment allows link-local backends)."""
    if allowed():
        return None
    reason = link_local_reason(host)
    if reason is None:
        return None
    return f"{reason}; backends there are refused (set {SETTING}=true to allow them)."


def url_error(url: Any) -> str | None:
    """The same for a URL the gateway fetches itself (a JWKS URL); None for anything that is not a URL."""
    if not isinstance(url, str):
        return None
    try:
        host = urlsplit(url.strip()).hostname
    except ValueError:
        return None
    return host_error(host) if host else None
