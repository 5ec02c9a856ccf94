"""`/metrics` on the admin listener: django-prometheus's registry (the admin and API side), then the gateway's
figures from every worker process combined (metrics.exposition)."""
from __future__ import annotations

import os

import prometheus_client
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

import rusta
from metrics import exposition, procfiles
from metrics.recorder import recorder


def combined_figures() -> procfiles.Combined:
    """Every worker's figures; in a process that writes no file (tests, a shell) its own recorder's instead."""
    folder = procfiles.folder_for(settings.VAR_DIR)
    own_file = folder / f"{os.getpid()}.json"
    return procfiles.combined(folder, extra=None if own_file.exists() else recorder.snapshot())


@require_GET
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """The Prometheus text format, version 0.0.4 (what `promtool check metrics` reads)."""
    django_side = prometheus_client.generate_latest(prometheus_client.REGISTRY).decode()
    gateway = exposition.render(combined_figures(), rusta.__version__)
    return HttpResponse(django_side + gateway, content_type=exposition.CONTENT_TYPE)
