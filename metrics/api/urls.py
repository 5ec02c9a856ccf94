"""URLs of the metrics API (the traffic history, the advice, a route's learned API docs, the abuse verdicts),
mounted under /api/ beside routes.api.urls."""
from __future__ import annotations

from django.urls import URLPattern, URLResolver, path
from rest_framework.routers import SimpleRouter

from metrics.api.advice import AdviceViewSet
from metrics.api.apidocs import LearnedDriftView, LearnedOpenApiView
from metrics.api.llm_spend import LlmSpendViewSet
from metrics.api.series import MetricsViewSet
from metrics.api.verdicts import VerdictViewSet

app_name = "metrics-api"

router = SimpleRouter()
router.register("metrics", MetricsViewSet, basename="metrics")
router.register("metrics/llm/spend", LlmSpendViewSet, basename="metrics-llm-spend")
router.register("advice", AdviceViewSet, basename="advice")
router.register("verdicts", VerdictViewSet, basename="verdict")

urlpatterns: list[URLPattern | URLResolver] = [
    # Under the routes API's paths (route id or name, like them); routes.api cannot import metrics.
    path("routes/<str:id>/learned-openapi/", LearnedOpenApiView.as_view(), name="learned-openapi"),
    path("routes/<str:id>/learned-openapi/drift/", LearnedDriftView.as_view(), name="learned-openapi-drift"),
    *router.urls,
]
