"""URLs of the metrics API (the traffic history, the advice), mounted under /api/ beside routes.api.urls."""
from __future__ import annotations

from rest_framework.routers import SimpleRouter

from metrics.api.advice import AdviceViewSet
from metrics.api.llm_spend import LlmSpendViewSet
from metrics.api.series import MetricsViewSet

app_name = "metrics-api"

router = SimpleRouter()
router.register("metrics", MetricsViewSet, basename="metrics")
router.register("metrics/llm/spend", LlmSpendViewSet, basename="metrics-llm-spend")
router.register("advice", AdviceViewSet, basename="advice")

urlpatterns = router.urls
