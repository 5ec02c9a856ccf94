"""URLs of the management API (mounted under /api/): staff users only, reads for viewers, writes for operators."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.template import engines
from django.urls import URLPattern, URLResolver, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.renderers import TemplateHTMLRenderer
from rest_framework.routers import SimpleRouter

from routes.api.audit import AuditEntryViewSet
from routes.api.cache import CacheViewSet
from routes.api.certificates import CertificateViewSet
from routes.api.consumers import ConsumerViewSet
from routes.api.health import BackendHealthViewSet
from routes.api.permissions import RolePermission
from routes.api.plugins import PluginViewSet
from routes.api.views import ConfigViewSet, RouteViewSet

app_name = "api"

# drf-spectacular's Redoc page links Google's font CDN in its <head>, and Redoc draws its maker's logo from
# cdn.redoc.ly under the menu. This is the same page with a head of its own, without the fonts (Redoc falls back to
# the browser's sans-serif) and with a policy that lets images come only from here, so the logo is never asked for.
REDOC_PAGE = """{% extends "drf_spectacular/redoc.html" %}{% block head %}<title>{{ title }}</title>
<meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="img-src 'self' data:">
<style>body { margin: 0; padding: 0; }</style>{% endblock head %}"""


class LocalRedocRenderer(TemplateHTMLRenderer):
    """Renders the Redoc view's page as REDOC_PAGE; errors keep DRF's own page."""

    page = engines["django"].from_string(REDOC_PAGE)

    def resolve_template(self, template_names: Iterable[str]) -> Any:
        names = list(template_names)
        return self.page if names == [SpectacularRedocView.template_name] else super().resolve_template(names)


router = SimpleRouter()
router.register("routes", RouteViewSet, basename="route")
router.register("config", ConfigViewSet, basename="config")
router.register("audit", AuditEntryViewSet, basename="audit")
router.register("cache", CacheViewSet, basename="cache")
router.register("backends", BackendHealthViewSet, basename="backend")
router.register("consumers", ConsumerViewSet, basename="consumer")
router.register("plugins", PluginViewSet, basename="plugin")
router.register("certificates", CertificateViewSet, basename="certificate")

urlpatterns: list[URLPattern | URLResolver] = [
    # drf-spectacular serves the schema to anyone by default; the API's shape is staff-only like the API.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[RolePermission]), name="schema"),
    # The reference pages, behind the same check: a browser without a session gets the API's 401, as for the schema.
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema", permission_classes=[RolePermission]),
         name="docs"),
    path("docs/redoc/", SpectacularRedocView.as_view(url_name="api:schema", permission_classes=[RolePermission],
                                                     renderer_classes=[LocalRedocRenderer]), name="redoc"),
    *router.urls,
]
