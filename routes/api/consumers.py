"""The consumers API: `/api/consumers/` (CRUD, by id or name) and each consumer's API keys under `keys/`.

An issued or rotated key is in the 201 answer once (`key`); every other answer shows keys by `prefix` only.
Reads need the viewer role, writes the operator role, as for routes.
"""
from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response

from routes.api.permissions import RolePermission
from routes.api.serializers import ErrorsSerializer
from routes.consumers import services
from routes.consumers.models import ApiKey, Consumer
from routes.services import ConfigError

CONSUMER_KEY = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH,
                                description="The consumer's numeric id, or its name.")
KEY_ID = OpenApiParameter("key_id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The API key's id.")
INVALID = OpenApiResponse(ErrorsSerializer, description="Invalid document; nothing was changed.")


class ApiKeySerializer(serializers.Serializer):
    """An API key as reads show it: its first characters, never the key."""

    id = serializers.IntegerField(read_only=True)
    prefix = serializers.CharField(read_only=True, help_text="The key's first characters, like `rk_Ab12Cd34`.")
    created_at = serializers.DateTimeField(read_only=True)
    expires_at = serializers.DateTimeField(read_only=True, allow_null=True,
                                           help_text="When it stops working; null: until revoked.")
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)
    # A CharField, not a ChoiceField: backend health has an enum named `state` too, and the schema's enum
    # names would collide.
    state = serializers.CharField(read_only=True, help_text="active, expiring (works until expires_at), expired "
                                                            "or revoked.")


class IssuedKeySerializer(ApiKeySerializer):
    """A key just issued: `key` is shown in this answer only, and can never be read again."""

    key = serializers.CharField(read_only=True, help_text="The API key itself. Store it now: it is not kept.")
    consumer = serializers.CharField(read_only=True, help_text="The consumer's name.")


class IssueKeySerializer(serializers.Serializer):
    """What `POST keys/` takes (an empty body is fine)."""

    ttl_s = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                     help_text="Seconds the key works for; left out: until revoked.")


class RotateKeySerializer(serializers.Serializer):
    """What `POST keys/{key_id}/rotate/` takes (an empty body is fine)."""

    overlap_s = serializers.IntegerField(
        required=False, min_value=0, max_value=services.MAX_OVERLAP_S,
        help_text=f"Seconds the old key keeps working (default {services.DEFAULT_OVERLAP_S}); 0: it stops at the "
                  "gateways' next reload.")


class ConsumerSerializer(serializers.Serializer):
    """A consumer. Writes go through routes.consumers.services; the read-only fields are ignored when sent back."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100, help_text="Unique; letters, digits and '_.@:-'. Sent upstream as "
                                                           "X-Consumer-Name.")
    enabled = serializers.BooleanField(required=False, default=True,
                                       help_text="A disabled consumer's keys and tokens are refused with 403.")
    tags = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    jwt_subjects = serializers.ListField(
        child=serializers.CharField(), required=False, default=list,
        help_text="JWT `sub` values that are this consumer (each belongs to one consumer at most).")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    keys = ApiKeySerializer(many=True, read_only=True)

    def to_internal_value(self, data: Any) -> Any:
        # The raw document goes to the service layer, which judges every key by its path.
        if not isinstance(data, dict):
            raise ConfigError({"": ["Send one consumer as a JSON object."]})
        return dict(data)

    def to_representation(self, instance: Consumer) -> dict[str, Any]:
        return services.consumer_document(instance)

    def create(self, validated_data: dict[str, Any]) -> Consumer:
        return services.save_consumer(validated_data, actor=self.context["request"].user, source="api")

    def update(self, instance: Consumer, validated_data: dict[str, Any]) -> Consumer:
        return services.save_consumer(validated_data, actor=self.context["request"].user, source="api",
                                      consumer=instance, partial=self.partial)


def _body(request: Request, known: tuple[str, ...]) -> dict[str, Any]:
    """The JSON object of a key action; unknown keys refused by name, like everywhere else."""
    data = request.data if request.data is not None else {}
    if not isinstance(data, dict):
        raise ConfigError({"": ["Send a JSON object (or nothing)."]})
    unknown = {str(key): [f"Unknown key; this takes {', '.join(known)}."] for key in data if key not in known}
    if unknown:
        raise ConfigError(unknown)
    return data


@extend_schema_view(
    list=extend_schema(summary="List consumers"),
    create=extend_schema(summary="Create a consumer", responses={201: ConsumerSerializer, 400: INVALID}),
    retrieve=extend_schema(summary="Show a consumer and its keys (prefixes only)", parameters=[CONSUMER_KEY]),
    update=extend_schema(summary="Replace a consumer", parameters=[CONSUMER_KEY],
                         responses={200: ConsumerSerializer, 400: INVALID}),
    partial_update=extend_schema(summary="Change some fields of a consumer", parameters=[CONSUMER_KEY],
                                 responses={200: ConsumerSerializer, 400: INVALID}),
    destroy=extend_schema(summary="Delete a consumer and its keys", parameters=[CONSUMER_KEY]),
)
class ConsumerViewSet(viewsets.ModelViewSet):
    """Consumers: who calls the gateway, known by API keys and JWT subjects."""

    queryset = Consumer.objects.prefetch_related("subjects", "api_keys").order_by("id")
    serializer_class = ConsumerSerializer
    permission_classes = [RolePermission]
    read_permission = "routes.view_consumer"
    write_permission = "routes.change_consumer"
    parser_classes = [JSONParser]
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Consumer:
        key = self.kwargs["id"]
        is_id = key.isascii() and key.isdigit() and len(key) <= 18
        consumer = get_object_or_404(self.get_queryset(), **({"pk": int(key)} if is_id else {"name": key}))
        self.check_object_permissions(self.request, consumer)
        return consumer

    def perform_destroy(self, instance: Consumer) -> None:
        services.delete_consumer(instance, actor=self.request.user, source="api")

    def _key(self, consumer: Consumer, key_id: str) -> ApiKey:
        return get_object_or_404(ApiKey.objects.filter(consumer=consumer), pk=int(key_id))

    @extend_schema(methods=["GET"], summary="A consumer's API keys (prefixes only)", parameters=[CONSUMER_KEY],
                   responses=ApiKeySerializer(many=True))
    @extend_schema(methods=["POST"], summary="Issue an API key: the answer is the only time it is shown",
                   parameters=[CONSUMER_KEY], request=IssueKeySerializer,
                   responses={201: IssuedKeySerializer, 400: INVALID})
    # Not paginated: the answer is every key of the consumer (pagination_class=None makes the schema say so).
    @action(detail=True, methods=["get", "post"], url_path="keys", url_name="keys", pagination_class=None)
    def keys(self, request: Request, id: str) -> Response:
        consumer = self.get_object()
        if request.method == "GET":
            now = timezone.now()
            return Response([services.key_document(key, now) for key in consumer.api_keys.all()])
        body = _body(request, ("ttl_s",))
        issued = services.issue_key(consumer, actor=request.user, source="api", ttl_s=body.get("ttl_s"))
        return Response(_issued(consumer, issued), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Rotate an API key: a new one (shown once), the old one ends after overlap_s",
                   parameters=[CONSUMER_KEY, KEY_ID], request=RotateKeySerializer,
                   responses={201: IssuedKeySerializer, 400: INVALID})
    @action(detail=True, methods=["post"], url_path=r"keys/(?P<key_id>[0-9]{1,18})/rotate", url_name="key-rotate")
    def rotate(self, request: Request, id: str, key_id: str) -> Response:
        consumer = self.get_object()
        body = _body(request, ("overlap_s",))
        issued = services.rotate_key(self._key(consumer, key_id), actor=request.user, source="api",
                                     overlap_s=body.get("overlap_s"))
        return Response(_issued(consumer, issued), status=status.HTTP_201_CREATED)

    @extend_schema(summary="Revoke an API key now (kept, listed as revoked)", parameters=[CONSUMER_KEY, KEY_ID],
                   request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["delete"], url_path=r"keys/(?P<key_id>[0-9]{1,18})", url_name="key")
    def revoke(self, request: Request, id: str, key_id: str) -> Response:
        consumer = self.get_object()
        key = services.revoke_key(self._key(consumer, key_id), actor=request.user, source="api")
        return Response(services.key_document(key))


def _issued(consumer: Consumer, issued: services.IssuedKey) -> dict[str, Any]:
    return {**services.key_document(issued.row), "key": issued.key, "consumer": consumer.name}
