"""URLs of the metrics API (backend health and the traffic history), mounted under /api/ beside routes.api.urls."""
from __future__ import annotations

from rest_framework.routers import SimpleRouter

from metrics.api.series import MetricsViewSet
from metrics.api.views import BackendHealthViewSet

app_name = "health-api"

router = SimpleRouter()
router.register("backends", BackendHealthViewSet, basename="backend")
router.register("metrics", MetricsViewSet, basename="metrics")

urlpatterns = router.urls
