"""The audit trail API: `GET /api/audit/` (filtered, newest first) and `GET /api/audit/{id}/`; read-only."""
from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, viewsets

from routes.api.permissions import RolePermission
from routes.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    """Who changed what and when; `changes` maps each changed field to [before, after], secrets redacted."""

    actor = serializers.CharField(source="actor_name", help_text="The user's name, kept if the user is deleted; "
                                                                 "`system` for changes without a user.")
    changes = serializers.JSONField(help_text="Field name to [before, after]; secrets show as `<redacted>`.")

    class Meta:
        model = AuditEntry
        fields = ("id", "created_at", "actor", "source", "action", "object_type", "object_id", "object_repr",
                  "changes")


class AuditFilterSerializer(serializers.Serializer):
    """The list's query string; every given filter must match."""

    object_type = serializers.CharField(required=False, help_text="route, settings, config, backend, ...")
    object_id = serializers.CharField(required=False, help_text="The object's id, like a route's number.")
    object = serializers.CharField(required=False, help_text="The object's name as recorded, like a route name.")
    actor = serializers.CharField(required=False, help_text="The user name (or `system`).")
    action = serializers.ChoiceField(choices=AuditEntry.Action.values, required=False)
    source = serializers.CharField(  # type: ignore[assignment]  # a field named like Field.source, as DRF allows
        required=False, help_text="admin, api, import or command.")
    since = serializers.DateTimeField(required=False, help_text="Entries at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Entries before this time (ISO 8601).")


FILTERS = {"object_type": "object_type", "object_id": "object_id", "object": "object_repr",
           "actor": "actor_name", "action": "action", "source": "source", "since": "created_at__gte",
           "until": "created_at__lt"}


@extend_schema_view(
    list=extend_schema(summary="The audit trail, newest first", parameters=[AuditFilterSerializer]),
    retrieve=extend_schema(summary="One audit entry"),
)
class AuditEntryViewSet(viewsets.ReadOnlyModelViewSet):
    """Every configuration change: who, when, from where (admin, api, import, command) and the diff."""

    queryset = AuditEntry.objects.all()
    serializer_class = AuditEntrySerializer
    permission_classes = [RolePermission]
    read_permission = "routes.view_auditentry"
    lookup_value_regex = "[0-9]{1,18}"

    def get_queryset(self) -> QuerySet[AuditEntry]:
        queryset = super().get_queryset()
        if self.action != "list":
            return queryset
        params = AuditFilterSerializer(data=self.request.query_params)
        params.is_valid(raise_exception=True)
        chosen: dict[str, Any] = {FILTERS[key]: value for key, value in params.validated_data.items()}
        return queryset.filter(**chosen)
