"""URLs of the dashboard, mounted at /admin/metrics/dashboard/ (staff only, through the admin's login): its views,
a page per route, the Consumers view and a page per consumer, the LLM Spend view, and each route's AI routing page
(metrics.ai_routing)."""
from __future__ import annotations

from django.contrib import admin
from django.urls import path

from metrics import ai_routing
from metrics.dashboard import consumers, spend, views

app_name = "metrics-dashboard"

urlpatterns = [
    path("", admin.site.admin_view(views.dashboard), name="overview"),
    path("route/<str:route>/", admin.site.admin_view(views.route_page), name="route"),
    path("ai/<str:route>/", admin.site.admin_view(ai_routing.route_page), name="ai"),
    path("ai/<str:route>/data/", admin.site.admin_view(ai_routing.route_data), name="ai-data"),
    path("consumers/", admin.site.admin_view(consumers.consumers_page), name="consumers"),
    path("consumer/<str:consumer>/", admin.site.admin_view(views.consumer_page), name="consumer"),
    path("spend/", admin.site.admin_view(spend.spend_page), name="spend"),
    path("<slug:view>/", admin.site.admin_view(views.dashboard), name="view"),
]
