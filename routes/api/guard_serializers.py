"""OpenAPI shapes of the request guard blocks (`cors`, `limits`, `ip_rules`, `security_headers`).

They document the blocks; validation is protocols.guards' own, reached through routes.services.
"""
from __future__ import annotations

from rest_framework import serializers

from protocols.guards.cors import DEFAULT_MAX_AGE, DEFAULT_METHODS
from protocols.guards.limits import (
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_HEADER_BYTES,
    DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_MAX_URL_LENGTH,
)
from protocols.guards.security import DEFAULT_HSTS_MAX_AGE


class CorsSerializer(serializers.Serializer):
    """CORS: which web origins may read the answers; preflights are answered by the gateway (204, or 403 JSON)."""

    enabled = serializers.BooleanField(required=False, default=True,
                                       help_text="false on a route switches the gateway-wide policy off there.")
    origins = serializers.ListField(
        child=serializers.CharField(),
        help_text='Exact (`https://app.example.com`), wildcard (`https://*.example.com`, `http://localhost:*`) or '
                  '`"*"`; `"null"` is refused, and `"*"` cannot go with `credentials`.')
    methods = serializers.ListField(child=serializers.CharField(), required=False, default=list(DEFAULT_METHODS))
    headers = serializers.ListField(
        child=serializers.CharField(), required=False, allow_null=True, default=None,
        help_text="Request headers allowed; null (or `*`): whatever the preflight asks for.")
    exposed_headers = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    credentials = serializers.BooleanField(required=False, default=False,
                                           help_text="Allow cookies and Authorization on cross-origin requests.")
    max_age = serializers.IntegerField(required=False, min_value=0, max_value=86_400, default=DEFAULT_MAX_AGE,
                                       help_text="Seconds a browser may cache a preflight's answer.")


class LimitsSerializer(serializers.Serializer):
    """Request size limits; 0 switches one off."""

    max_body_bytes = serializers.IntegerField(required=False, min_value=0, default=DEFAULT_MAX_BODY_BYTES,
                                              help_text="413 past it (Content-Length, or counted as it arrives); "
                                                        "0: none (the default).")
    max_header_bytes = serializers.IntegerField(required=False, min_value=0, default=DEFAULT_MAX_HEADER_BYTES,
                                                help_text="431 past it (names, values and separators).")
    max_header_count = serializers.IntegerField(required=False, min_value=0, default=DEFAULT_MAX_HEADER_COUNT,
                                                help_text="431 past it.")
    max_url_length = serializers.IntegerField(required=False, min_value=0, default=DEFAULT_MAX_URL_LENGTH,
                                              help_text="414 past it (path and query as sent).")


class IpRulesSerializer(serializers.Serializer):
    """IP allow and deny lists, checked against the client address behind trusted proxies; 403 when refused."""

    enabled = serializers.BooleanField(required=False, default=True)
    allow = serializers.ListField(child=serializers.CharField(), required=False, default=list,
                                  help_text="Addresses or CIDR ranges; when set, every other address is refused.")
    deny = serializers.ListField(child=serializers.CharField(), required=False, default=list,
                                 help_text="Addresses or CIDR ranges refused; deny wins over allow.")


class SecurityHeadersSerializer(serializers.Serializer):
    """Security response headers, on by default; a backend's own value wins unless `override`."""

    enabled = serializers.BooleanField(required=False, default=True)
    content_type_options = serializers.BooleanField(required=False, default=True,
                                                    help_text="`X-Content-Type-Options: nosniff`.")
    frame_options = serializers.JSONField(required=False,
                                          help_text='`"DENY"` (the default), `"SAMEORIGIN"` or false.')
    referrer_policy = serializers.JSONField(required=False,
                                            help_text="A Referrer-Policy value (default `no-referrer`), or false.")
    hsts_max_age = serializers.IntegerField(required=False, min_value=0, default=DEFAULT_HSTS_MAX_AGE,
                                            help_text="Strict-Transport-Security on https answers only; 0: off.")
    hsts_include_subdomains = serializers.BooleanField(required=False, default=False)
    hsts_preload = serializers.BooleanField(required=False, default=False)
    content_security_policy = serializers.JSONField(required=False, default=None,
                                                    help_text="A Content-Security-Policy value; null: none.")
    override = serializers.BooleanField(required=False, default=False,
                                        help_text="Replace the backend's own values of these headers.")
