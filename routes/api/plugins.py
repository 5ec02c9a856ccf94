"""The plugins API: `GET /api/plugins/` lists what `plugins` entries may name and where each runs; read-only."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from routes.api.permissions import RolePermission
from routes.plugin_catalogue import plugin_catalogue


class PluginSerializer(serializers.Serializer):
    """One plugin that can run on this gateway."""

    name = serializers.CharField(help_text="What a `plugins` entry names (`ai_routing`: Rusta's own AI routing, "
                                           "run by a route's `ai_policy`, never listed).")
    package = serializers.CharField(allow_null=True, help_text="The Python distribution that installs it.")
    version = serializers.CharField(allow_null=True)
    builtin = serializers.BooleanField(help_text="Rusta's own, put in a route's chain by its blocks.")
    checks_config = serializers.BooleanField(help_text="Its config is checked when a route or the settings are "
                                                       "saved (the plugin's check_config).")
    gateway_wide = serializers.BooleanField(help_text="The gateway-wide `plugins` list has it.")
    routes = serializers.ListField(child=serializers.CharField(), help_text="Routes that run it by name.")
    error = serializers.CharField(allow_null=True, help_text="Why its package cannot be loaded, when it cannot.")


class PluginViewSet(viewsets.ViewSet):
    """The installed plugin packages (entry point group `rusta.plugins`) and Rusta's own, with where each runs."""

    permission_classes = [RolePermission]
    read_permission = "routes.view_route"

    @extend_schema(summary="The plugins that can run", responses={200: PluginSerializer(many=True)})
    def list(self, request: Request) -> Response:
        return Response(PluginSerializer(plugin_catalogue(), many=True).data)
