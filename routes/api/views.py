"""Thin ViewSets of the management API: each action is one call into routes.services."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.http import JsonResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from protocols.table import LiveTable, live
from routes import config_files, import_export, name_check, services
from routes.api.document_types import config_type_errors, refuse_wrong_types, route_type_errors
from routes.api.permissions import IsSuperuser, RolePermission
from routes.api.serializers import (
    ConfigFileSerializer,
    ConfigSerializer,
    ConfigStatusSerializer,
    ErrorsSerializer,
    GatewaySettingsSerializer,
    ImportReportSerializer,
    ReloadSerializer,
    RouteRefusalSerializer,
    RouteSerializer,
    RouteValidationSerializer,
    SettingsChangeSerializer,
)
from routes.models import Route
from routes.secrets import redact
from routes.settings_blocks import settings_document
from routes.validation import unknown_keys

ROUTE_KEY = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH,
    description="The route's numeric id, or its name (like Kong's `/routes/{id or name}`).",
)
INVALID = OpenApiResponse(ErrorsSerializer, description="Invalid document; nothing was changed.")
DRY_RUN = OpenApiParameter("dry_run", OpenApiTypes.BOOL, OpenApiParameter.QUERY, default=False,
                           description="Answer what the change would do, and change nothing.")
PRUNE = OpenApiParameter(
    "prune", OpenApiTypes.BOOL, OpenApiParameter.QUERY, default=False,
    description="Also delete the routes, settings blocks, consumers and certificates the document lacks, and empty "
                "the routes or settings section it leaves out (a left-out consumers or certificates section is "
                "kept), so the configuration equals the document.")
CONFIG_DIFF = inline_serializer("ConfigDiff", {
    "changed": serializers.BooleanField(help_text="Whether applying the document changes anything."),
    "applied": serializers.BooleanField(help_text="True when this call wrote the changes."),
    "routes": serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                    help_text="Route names: created, updated, deleted, unchanged."),
    "settings": serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                      help_text="Settings blocks by name: added, changed, removed."),
    "consumers": serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                       help_text="Consumer names: created, updated, deleted, unchanged."),
    "certificates": serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                          help_text="Certificate names: created, updated, deleted, unchanged."),
    "changes": serializers.ListField(
        child=serializers.DictField(),
        help_text="Each value that changes: path (`routes.users.retry.max_retries`), op (add, remove, change), "
                  "old and new (secrets `<redacted>`), and secret: true for a changed secret, shown without values."),
    "version": serializers.IntegerField(help_text="The configuration version after the call."),
})
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"", "0", "false", "no", "off"})


@extend_schema_view(
    list=extend_schema(summary="List routes"),
    create=extend_schema(summary="Create a route", request=RouteSerializer,
                         responses={201: RouteSerializer, 400: INVALID}),
    retrieve=extend_schema(summary="Show a route", parameters=[ROUTE_KEY]),
    update=extend_schema(summary="Replace a route", parameters=[ROUTE_KEY], request=RouteSerializer,
                         responses={200: RouteSerializer, 400: INVALID}),
    partial_update=extend_schema(summary="Change some fields of a route", parameters=[ROUTE_KEY],
                                 request=RouteSerializer, responses={200: RouteSerializer, 400: INVALID}),
    destroy=extend_schema(summary="Delete a route", parameters=[ROUTE_KEY]),
)
class RouteViewSet(viewsets.ModelViewSet):
    """Routes: a public path (and optional host) mapped to a pool of backends, with its policies."""

    queryset = Route.objects.prefetch_related("backends").order_by("id")
    serializer_class = RouteSerializer
    permission_classes = [RolePermission]
    parser_classes = [JSONParser]
    lookup_url_kwarg = "id"
    # Names may contain dots ("api.v1"), so the default "[^/.]+" would cut them.
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Route:
        key = self.kwargs["id"]
        # Digits are an id (bounded, so a huge number is a 404, not a database overflow); anything else a name.
        is_id = key.isascii() and key.isdigit() and len(key) <= 18
        lookup = {"pk": int(key)} if is_id else {"name": key}
        route = get_object_or_404(self.get_queryset(), **lookup)
        self.check_object_permissions(self.request, route)
        return route

    def perform_create(self, serializer: RouteSerializer) -> None:  # type: ignore[override]
        self._save(serializer)

    def perform_update(self, serializer: RouteSerializer) -> None:  # type: ignore[override]
        self._save(serializer)

    def _save(self, serializer: RouteSerializer) -> None:
        # Atomic, so that the wrong types refuse the document even if validation (wrongly) let it be saved.
        with transaction.atomic():
            refuse_wrong_types(serializer.save, route_type_errors(self.request.data))

    def perform_destroy(self, instance: Route) -> None:
        services.delete_route(instance, actor=self.request.user, source="api")

    @extend_schema(
        summary="Check a route without saving it",
        request=RouteSerializer,
        responses={200: RouteValidationSerializer, 400: RouteRefusalSerializer},
    )
    @action(detail=False, methods=["post"])
    def validate(self, request: Request) -> Response:
        """Dry run: answers the document as it would be saved, or its errors. Nothing is saved.

        A document carrying the `id` of a stored route is checked as a change of that route. A valid document
        also gets `warnings`: backend host names that do not resolve from this gateway (saving is still allowed).
        """
        data = request.data
        stored = None
        route_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(route_id, int) and not isinstance(route_id, bool) and 0 < route_id < 2**63:
            stored = Route.objects.filter(pk=route_id).first()
        ignored = unknown_keys(data) if isinstance(data, dict) else []
        try:
            doc = refuse_wrong_types(lambda: services.prepare_route(data, route=stored), route_type_errors(data))
        except services.ConfigError as exc:
            return Response({"valid": False, "errors": exc.errors, "unknown_keys": ignored},
                            status=status.HTTP_400_BAD_REQUEST)
        return Response({"valid": True, "route": redact(doc), "warnings": name_check.unresolved_backends(doc),
                         "unknown_keys": ignored})


def live_status(state: LiveTable = live) -> dict[str, Any]:
    """This process's route table next to the stored configuration version."""
    db_state = services.config_version()
    built_at = datetime.fromtimestamp(state.table.built_at, tz=UTC) if state.loaded else None
    return {
        "database": {"version": db_state.version, "changed_at": db_state.changed_at,
                     "health_version": db_state.health_version},
        "live": {"loaded": state.loaded, "version": state.table.version, "built_at": built_at,
                 "routes": len(state.table), "health_version": state.health_version,
                 "down_backends": sorted(backend for backend, healthy in state.health.items() if not healthy)},
        "in_sync": state.loaded and state.table.version == db_state.version,
        "health_in_sync": state.health_version == db_state.health_version,
    }


def _flag(request: Request, name: str) -> bool:
    raw = request.query_params.get(name, "").strip().lower()
    if raw in TRUE_WORDS:
        return True
    if raw in FALSE_WORDS:
        return False
    raise services.ConfigError({name: ["Use true or false."]})


class ConfigViewSet(viewsets.ViewSet):
    """The configuration as a whole: status, reload, export and import in the earlier gateway's format, the
    gateway-wide settings blocks, and the diff and apply of a configuration document (routes.config_files)."""

    permission_classes = [RolePermission]
    parser_classes = [JSONParser]

    @extend_schema(summary="The whole configuration (secrets redacted) and its status",
                   responses=ConfigSerializer)
    def list(self, request: Request) -> Response:
        data = import_export.export_config()
        data["status"] = ConfigStatusSerializer(live_status()).data
        return Response(data)

    @extend_schema(summary="Stored version and this process's live route table", responses=ConfigStatusSerializer)
    @action(detail=False, methods=["get"])
    def status(self, request: Request) -> Response:
        return Response(ConfigStatusSerializer(live_status()).data)

    @extend_schema(summary="Make every gateway process rebuild its route table", request=None,
                   responses=ReloadSerializer)
    @action(detail=False, methods=["post"])
    def reload(self, request: Request) -> Response:
        version = services.request_reload(actor=request.user, source="api")
        return Response({"version": version})

    @extend_schema(
        summary="Download the configuration file (secrets redacted)",
        parameters=[OpenApiParameter(
            "include_secrets", OpenApiTypes.BOOL, OpenApiParameter.QUERY, default=False,
            description="Write secrets instead of `<redacted>`: superusers only (403 for everyone else).")],
        responses=ConfigFileSerializer,
    )
    @action(detail=False, methods=["get"])
    def export(self, request: Request) -> JsonResponse:
        include_secrets = _flag(request, "include_secrets")
        if include_secrets and not IsSuperuser().has_permission(request, self):
            raise PermissionDenied("Only superusers may export secrets; leave out include_secrets.")
        data = import_export.export_config(include_secrets=include_secrets)
        version = services.config_version().version
        # A plain JSON file whatever the Accept header, so a browser saves it instead of rendering the HTML API.
        return JsonResponse(data, json_dumps_params={"indent": 2}, headers={
            "Content-Disposition": f'attachment; filename="rusta-config-v{version}.json"',
        })

    @extend_schema(
        summary="Load a configuration file of the earlier gateway (or an export)",
        parameters=[
            OpenApiParameter(
                "replace", OpenApiTypes.BOOL, OpenApiParameter.QUERY, default=False,
                description="Delete routes that are not in the file, so the database equals the file."),
            DRY_RUN,
        ],
        request=ConfigFileSerializer,
        responses={200: ImportReportSerializer, 400: INVALID},
    )
    @action(detail=False, methods=["post"], url_path="import", url_name="import")
    def import_config(self, request: Request) -> Response:
        """Routes are matched by name; an invalid file changes nothing and answers every error by path."""
        replace, dry_run = _flag(request, "replace"), _flag(request, "dry_run")
        with transaction.atomic():
            report = refuse_wrong_types(
                lambda: import_export.import_config(request.data, actor=request.user, source="api", replace=replace,
                                               dry_run=dry_run),
                config_type_errors(request.data))
            version = services.config_version().version
        return Response({**report.as_dict(), "version": version})

    @extend_schema(methods=["GET"], summary="The gateway-wide settings blocks (secrets redacted)",
                   responses=GatewaySettingsSerializer)
    @extend_schema(
        methods=["PUT"], summary="Replace the gateway-wide settings (a block left out is cleared)",
        parameters=[DRY_RUN], request=GatewaySettingsSerializer,
        responses={200: SettingsChangeSerializer, 400: INVALID})
    @extend_schema(
        methods=["PATCH"], summary="Change some gateway-wide settings blocks (null clears one)",
        parameters=[DRY_RUN], request=GatewaySettingsSerializer,
        responses={200: SettingsChangeSerializer, 400: INVALID})
    # Not named `settings`: APIView.settings is DRF's own configuration, which the view reads.
    @action(detail=False, methods=["get", "put", "patch"], url_path="settings", url_name="settings")
    def gateway_settings(self, request: Request) -> Response:
        """jwt, rate_limit, ai and the request guards used by routes without their own; what GET answers, PUT
        takes back. Validated like an import (a key no block knows is an error), audited per changed block."""
        if request.method == "GET":
            return Response(settings_document(services.gateway_settings()))
        dry_run = _flag(request, "dry_run")
        if request.stream is None:
            # DRF reads an empty body as {}, which a PUT would take as "clear every block": say so instead.
            raise services.ConfigError({"": ["Send the settings as a JSON object; {} clears every block."]})
        with transaction.atomic():
            report = services.save_settings(request.data, actor=request.user, source="api",
                                            partial=request.method == "PATCH", dry_run=dry_run)
            version = services.config_version().version
        return Response({**report.as_dict(), "version": version})

    @extend_schema(
        summary="What applying a configuration document would change",
        parameters=[PRUNE], request=OpenApiTypes.OBJECT, responses={200: CONFIG_DIFF, 400: INVALID})
    @action(detail=False, methods=["post"])
    def diff(self, request: Request) -> Response:
        """The document of `manage.py config` as JSON: `routes`, `consumers` and `certificates` by name, `settings`
        blocks. Nothing is changed.
        Operators only, like apply: whether a secret changes tells whether a guess of it was right."""
        return self._apply(request, dry_run=True)

    @extend_schema(
        summary="Make the configuration what a configuration document says, in one audited change",
        parameters=[PRUNE, DRY_RUN], request=OpenApiTypes.OBJECT, responses={200: CONFIG_DIFF, 400: INVALID})
    @action(detail=False, methods=["post"])
    def apply(self, request: Request) -> Response:
        """All or nothing: an invalid document changes nothing and answers every error by path. `${env:...}` and
        `${file:...}` references are refused here (only `manage.py config` resolves them)."""
        return self._apply(request, dry_run=_flag(request, "dry_run"))

    def _apply(self, request: Request, *, dry_run: bool) -> Response:
        prune, data = _flag(request, "prune"), request.data
        if request.stream is None:
            raise services.ConfigError({"": ["Send the configuration document as a JSON object."]})
        routes = data.get("routes") if isinstance(data, dict) else None
        wrong = {path: messages for name, body in (routes.items() if isinstance(routes, dict) else ())
                 for path, messages in route_type_errors(body, f"{config_files.route_path(name)}.").items()}
        no_references = config_files.References()  # resolved on the server, they would disclose its environment
        with transaction.atomic():
            result = refuse_wrong_types(
                lambda: config_files.apply_config(data, actor=request.user, source="api", refs=no_references,
                                                  prune=prune, dry_run=dry_run),
                wrong)
            version = services.config_version().version
        return Response({**result.as_dict(), "version": version})
