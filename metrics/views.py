"""`/metrics` on the admin listener: django-prometheus's registry (the admin and API side), then the gateway's
figures from every worker process combined (metrics.exposition), then the gateway-wide gauges read from the
configuration (the TLS certificates' expiry, metrics.certificates).

Open by default, like Kong's Status API: the admin listener is on 127.0.0.1 unless moved, and Prometheus should
scrape without setup. With RUSTA_METRICS_TOKEN set it needs that token, as `Authorization: Bearer <token>`
(Prometheus' `authorization`) or as the password of HTTP Basic (`basic_auth`, any user name).
"""
from __future__ import annotations

import base64
import binascii
import hmac
import os

import prometheus_client
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

import rusta
from metrics import certificates, exposition, procfiles
from protocols.recorder import recorder


def combined_figures() -> procfiles.Combined:
    """Every worker's figures; in a process that writes no file (tests, a shell) its own recorder's instead."""
    folder = procfiles.folder_for(settings.INSTANCE_DIR)  # this gateway's workers, not another's
    own_file = folder / f"{os.getpid()}.json"
    return procfiles.combined(folder, extra=None if own_file.exists() else recorder.snapshot())


def token_offered(authorization: str) -> str | None:
    """The token of `Bearer <token>`, or the password of `Basic <user:password>`; None otherwise."""
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2]
    return None


def scrape_allowed(request: HttpRequest) -> bool:
    token = settings.RUSTA_METRICS_TOKEN
    if not token:
        return True
    offered = token_offered(request.headers.get("Authorization", ""))
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format, version 0.0.4 (what `promtool check metrics` reads)."""
    if not scrape_allowed(request):
        return HttpResponse("A metrics token is required (RUSTA_METRICS_TOKEN).\n", status=401,
                            content_type="text/plain", headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    django_side = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    gateway = exposition.render(combined_figures(), rusta.__version__)
    stored = certificates.expiry_lines(certificates.expiries())
    return HttpResponse(django_side + gateway + stored, content_type=exposition.CONTENT_TYPE)
