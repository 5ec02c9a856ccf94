"""URLs of the dashboard, mounted at /admin/metrics/dashboard/ (staff only, through the admin's login): its views,
a page per route, the Consumers view and a page per consumer, the LLM Spend view, the Advice view (and its Apply),
and each route's AI routing page (metrics.ai_routing) and learned API docs (metrics.apidocs.page)."""
from __future__ import annotations

from django.contrib import admin
from django.urls import path

from metrics import ai_routing
from metrics.apidocs import page as apidocs_page
from metrics.dashboard import advice, consumers, spend, views

app_name = "metrics-dashboard"

urlpatterns = [
    path("", admin.site.admin_view(views.dashboard), name="overview"),
    path("route/<str:route>/", admin.site.admin_view(views.route_page), name="route"),
    path("ai/<str:route>/", admin.site.admin_view(ai_routing.route_page), name="ai"),
    path("ai/<str:route>/data/", admin.site.admin_view(ai_routing.route_data), name="ai-data"),
    path("apidocs/<str:route>/", admin.site.admin_view(apidocs_page.route_page), name="apidocs"),
    path("consumers/", admin.site.admin_view(consumers.consumers_page), name="consumers"),
    path("consumer/<str:consumer>/", admin.site.admin_view(views.consumer_page), name="consumer"),
    path("spend/", admin.site.admin_view(spend.spend_page), name="spend"),
    path("advice/", admin.site.admin_view(advice.advice_page), name="advice"),
    path("advice/<str:advice_id>/apply/", admin.site.admin_view(advice.advice_apply), name="advice-apply"),
    path("<slug:view>/", admin.site.admin_view(views.dashboard), name="view"),
]
