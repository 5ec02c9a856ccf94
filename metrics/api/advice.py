"""The advice API: `GET /api/advice/` lists the findings with their evidence, draft and diff; `POST
/api/advice/{id}/apply/` applies one draft (operators only), audited with source "advice"; `GET
/api/advice/forecast/` shows each route's load forecast and the worker count it needs."""
from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from metrics.advice import capacity, phrasing
from metrics.advice.apply import AdviceNotFound, StaleAdvice, apply_advice
from metrics.advice.context import Context
from metrics.advice.engine import advise, remember_shown
from metrics.views import combined_figures
from routes.api.permissions import RolePermission


def advice_document(llm: str = "call") -> dict[str, Any]:
    """What `GET /api/advice/` answers (the admin page and the command show the same)."""
    now = timezone.now()
    run = advise(now, combined_figures(), llm=llm)
    remember_shown(run)
    return {"generated_at": now, "findings": [item.as_dict() for item in run.items],
            "llm": {"model": run.llm, "outcomes": phrasing.outcomes()}}


def audit_url(entry_id: int) -> str:
    return reverse("admin:routes_auditentry_change", args=[entry_id])


class AdviceViewSet(viewsets.ViewSet):
    """Advice with evidence and a draft change; nothing is applied unless an operator asks."""

    permission_classes = [RolePermission]
    lookup_value_regex = "[^/]+"

    @extend_schema(summary="The advice: findings with their evidence, draft change and diff",
                   responses={200: OpenApiResponse(description="The findings, most severe first, and how the LLM's "
                                                               "answers went.")})
    def list(self, request: Request) -> Response:
        return Response(advice_document())

    @extend_schema(summary="Apply one finding's draft (operators)", request=None,
                   responses={200: OpenApiResponse(description="Applied: the route, the changes and the audit entry."),
                              404: OpenApiResponse(description="No advice has this id."),
                              409: OpenApiResponse(description="The advice is stale: the reason, and the id of the "
                                                               "advice now offered if any.")})
    @action(detail=True, methods=["post"])
    def apply(self, request: Request, pk: str) -> Response:
        try:
            applied = apply_advice(pk, actor=request.user, now=timezone.now(), live=combined_figures())
        except AdviceNotFound as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_404_NOT_FOUND)
        except StaleAdvice as exc:
            return Response({"detail": f"stale advice: {exc.reason}", "reason": exc.reason, "current": exc.current},
                            status=status.HTTP_409_CONFLICT)
        return Response({**applied.as_dict(), "audit_url": audit_url(applied.audit.pk)})

    @extend_schema(summary="Each route's load forecast for the next 24 h and the gateway workers its peak needs",
                   responses={200: OpenApiResponse(description="The forecasts and the worker count.")})
    @action(detail=False, methods=["get"])
    def forecast(self, request: Request) -> Response:
        ctx = Context(timezone.now(), combined_figures())
        forecasts = capacity.route_forecasts(ctx)
        per_worker, source = capacity.worker_capacity(ctx)
        peak, hour = capacity.gateway_peak(forecasts, ctx.until) if forecasts else (0.0, ctx.until)
        return Response({"routes": [f.as_dict(ctx.until) for f in forecasts],
                         "worker_capacity_rps": per_worker, "worker_capacity_from": source,
                         "forecast_peak_rps": round(peak, 3), "forecast_peak_hour": hour,
                         "workers_needed": capacity.workers_needed(peak, per_worker) if per_worker else None,
                         "workers_running": ctx.live.workers})
