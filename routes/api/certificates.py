"""The certificates API: `/api/certificates/` (CRUD, by id or name) of the TLS certificates the proxy serves.

`key` is write-only: sent on create (and to replace it), never in an answer; an update without it, or with
`<redacted>`, keeps the stored key. Reads need the viewer role, writes the operator role, as for routes.
"""
from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.parsers import JSONParser

from routes.api.permissions import RolePermission
from routes.api.serializers import ErrorsSerializer
from routes.certificates import services
from routes.certificates.models import Certificate
from routes.services import ConfigError

CERTIFICATE_KEY = OpenApiParameter("id", OpenApiTypes.STR, OpenApiParameter.PATH,
                                   description="The certificate's numeric id, or its name.")
INVALID = OpenApiResponse(ErrorsSerializer, description="Invalid document; nothing was changed.")


class CertificateSerializer(serializers.Serializer):
    """A TLS certificate. Writes go through routes.certificates.services; the read-only fields are ignored when
    sent back."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100, help_text="Unique; letters, digits and '_.:-'.")
    hosts = serializers.ListField(
        child=serializers.CharField(), required=False, default=list,
        help_text="DNS names it serves (by SNI), `*.example.com` for one label; each must be a name the certificate "
                  "is valid for and no other certificate's. Empty: the certificate's subjectAltName DNS names.")
    certificate = serializers.CharField(help_text="The PEM chain: the leaf first, then its intermediates.")
    key = serializers.CharField(
        write_only=True, required=False,
        help_text="The leaf's private key in PEM (RSA, EC, Ed25519 or Ed448; not encrypted). Write-only: never "
                  "shown; left out or `<redacted>` on an update keeps the stored key.")
    default = serializers.BooleanField(
        required=False, default=False,
        help_text="Served to clients whose name (SNI) matches no certificate's hosts, or who send none; one "
                  "certificate at most.")
    subject = serializers.CharField(read_only=True, help_text="The leaf's subject (RFC 4514).")
    issuer = serializers.CharField(read_only=True, help_text="The leaf's issuer (RFC 4514).")
    not_before = serializers.DateTimeField(read_only=True)
    not_after = serializers.DateTimeField(read_only=True, help_text="When the leaf expires.")
    expires_in_days = serializers.IntegerField(
        read_only=True, help_text="Whole days until not_after; negative once expired (an expired certificate is "
                                  "kept and served, and flagged by a recommendation and the expiry metric).")
    fingerprint_sha256 = serializers.CharField(read_only=True, help_text="SHA-256 of the leaf (DER), hex.")
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)

    def to_internal_value(self, data: Any) -> Any:
        # The raw document goes to the service layer, which judges every key by its path.
        if not isinstance(data, dict):
            raise ConfigError({"": ["Send one certificate as a JSON object."]})
        return dict(data)

    def to_representation(self, instance: Certificate) -> dict[str, Any]:
        return services.certificate_document(instance)

    def create(self, validated_data: dict[str, Any]) -> Certificate:
        return services.save_certificate(validated_data, actor=self.context["request"].user, source="api")

    def update(self, instance: Certificate, validated_data: dict[str, Any]) -> Certificate:
        return services.save_certificate(validated_data, actor=self.context["request"].user, source="api",
                                         row=instance, partial=self.partial)


@extend_schema_view(
    list=extend_schema(summary="List TLS certificates (never their keys)"),
    create=extend_schema(summary="Add a TLS certificate with its key",
                         responses={201: CertificateSerializer, 400: INVALID}),
    retrieve=extend_schema(summary="Show a TLS certificate (never its key)", parameters=[CERTIFICATE_KEY]),
    update=extend_schema(summary="Replace a TLS certificate (key left out: the stored one)",
                         parameters=[CERTIFICATE_KEY], responses={200: CertificateSerializer, 400: INVALID}),
    partial_update=extend_schema(summary="Change some fields of a TLS certificate", parameters=[CERTIFICATE_KEY],
                                 responses={200: CertificateSerializer, 400: INVALID}),
    destroy=extend_schema(summary="Delete a TLS certificate", parameters=[CERTIFICATE_KEY]),
)
class CertificateViewSet(viewsets.ModelViewSet):
    """TLS certificates the proxy listener serves, picked by SNI."""

    queryset = Certificate.objects.order_by("id")
    serializer_class = CertificateSerializer
    permission_classes = [RolePermission]
    read_permission = "routes.view_certificate"
    write_permission = "routes.change_certificate"
    parser_classes = [JSONParser]
    lookup_url_kwarg = "id"
    lookup_value_regex = "[^/]+"

    def get_object(self) -> Certificate:
        key = self.kwargs["id"]
        is_id = key.isascii() and key.isdigit() and len(key) <= 18
        row = get_object_or_404(self.get_queryset(), **({"pk": int(key)} if is_id else {"name": key}))
        self.check_object_permissions(self.request, row)
        return row

    def perform_destroy(self, instance: Certificate) -> None:
        services.delete_certificate(instance, actor=self.request.user, source="api")
