"""The dashboard's Advice view: each finding with its evidence, the diff of its draft and, for operators, an Apply
button (a POST with CSRF, confirmed in the browser) that applies it through metrics.advice.apply and links the
audit entry it wrote."""
from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.views.decorators.http import require_POST

from metrics.advice.apply import AdviceNotFound, StaleAdvice, apply_advice
from metrics.api.advice import advice_document, audit_url
from metrics.dashboard.views import VIEWS, _routes
from metrics.views import combined_figures
from routes.roles import role_of


def _can_apply(request: HttpRequest) -> bool:
    return role_of(request.user) in ("operator", "superuser")


def _rows(figures: dict[str, Any]) -> list[tuple[str, Any, bool]]:
    """(name, value, whether the value is structured) for the evidence table."""
    return [(name, value, isinstance(value, dict | list)) for name, value in figures.items()]


def advice_page(request: HttpRequest) -> HttpResponse:
    document = advice_document()
    for item in document["findings"]:
        item["rows"] = _rows(item["evidence"]["figures"])
    context = {
        **admin.site.each_context(request),
        "title": "Metrics: Advice",
        "views": [(key, value["title"]) for key, value in VIEWS.items()],
        "view": "advice",
        "routes": _routes(),
        "findings": document["findings"],
        "llm": document["llm"],
        "can_apply": _can_apply(request),
    }
    return render(request, "admin/metrics/advice.html", context)


@require_POST
def advice_apply(request: HttpRequest, advice_id: str) -> HttpResponse:
    if not _can_apply(request):
        return HttpResponseForbidden("Applying advice needs the operator role.")
    page = reverse("metrics-dashboard:advice")
    try:
        applied = apply_advice(advice_id, actor=request.user, now=timezone.now(), live=combined_figures())
    except (AdviceNotFound, StaleAdvice) as exc:
        messages.error(request, f"Not applied: {getattr(exc, 'reason', str(exc))}")
        return HttpResponseRedirect(page)
    messages.success(request, format_html(
        "Applied to route {}: {}. <a id='advice-audit-link' href='{}'>Audit entry #{}</a>.", applied.route.name,
        ", ".join(sorted(applied.audit.changes)), audit_url(applied.audit.pk), applied.audit.pk))
    return HttpResponseRedirect(page)
