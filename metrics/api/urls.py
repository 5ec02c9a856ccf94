"""URLs of the backend health API, mounted under /api/ beside routes.api.urls."""
from __future__ import annotations

from rest_framework.routers import SimpleRouter

from metrics.api.views import BackendHealthViewSet

app_name = "health-api"

router = SimpleRouter()
router.register("backends", BackendHealthViewSet, basename="backend")

urlpatterns = router.urls
