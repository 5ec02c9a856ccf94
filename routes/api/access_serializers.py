"""OpenAPI shapes of a route's `ftp`, `websocket` and `tls` blocks (`jwt` and `rate_limit` are documented by key in the
protocols.auth and protocols.limits package docstrings).

They document the blocks; validation is routes.access_blocks', reached through routes.services.
"""
from __future__ import annotations

from rest_framework import serializers

from protocols.tls import policy as tls_policy
from protocols.websocket.config import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES_LIMIT
from routes.access_blocks import MAX_IDLE_TIMEOUT_S


class FtpPolicySerializer(serializers.Serializer):
    """How the FTP gateway logs in to an ftp route's server, and which directory clients see as `/`."""

    username = serializers.CharField(required=False, allow_null=True, default="anonymous")
    password = serializers.CharField(
        required=False, allow_null=True, default="anonymous@",
        help_text="Write-only: reads back as `<redacted>`; sending `<redacted>` back keeps the stored password.")
    passthrough_basic_auth = serializers.BooleanField(
        required=False, allow_null=True, default=False,
        help_text="Log in with the client's HTTP Basic credentials instead (401 without them).")
    # The block's key is `root`, which DRF's Field also names its root serializer; declared fields win.
    root = serializers.CharField(  # type: ignore[assignment]
        required=False, allow_null=True, allow_blank=True, default="",
        help_text="The server directory clients see as `/`; empty: the internal path (parameters filled in), "
                  "or `/`.")


class WebSocketPolicySerializer(serializers.Serializer):
    """Limits of a websocket route's tunnels."""

    max_message_bytes = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_MESSAGE_BYTES_LIMIT, default=DEFAULT_MAX_MESSAGE_BYTES,
        help_text="A larger message, either way, closes the tunnel with 1009.")
    idle_timeout_s = serializers.FloatField(
        required=False, min_value=0, max_value=MAX_IDLE_TIMEOUT_S, default=DEFAULT_IDLE_TIMEOUT,
        help_text="No message either way for this long closes the tunnel with 1001; 0: never.")


_TLS = tls_policy.DEFAULT_TLS_POLICY


class TlsPolicySerializer(serializers.Serializer):
    """TLS on the proxy listener for one route: redirect plain HTTP to HTTPS, and client certificates (mTLS)."""

    redirect_http = serializers.BooleanField(
        required=False, default=_TLS.redirect_http,
        help_text="A request that arrived over plain HTTP is answered with a redirect to the same URL over HTTPS.")
    redirect_status = serializers.ChoiceField(
        choices=tls_policy.REDIRECT_STATUSES, required=False, default=_TLS.redirect_status)
    client_certificate = serializers.ChoiceField(
        choices=tls_policy.CLIENT_CERTIFICATE_MODES, required=False, default=_TLS.client_certificate,
        help_text="`optional`: a verified client certificate's subject is passed upstream; `required`: a request "
                  "without one is refused (401).")
    client_ca = serializers.CharField(
        required=False, allow_blank=True, default=_TLS.client_ca_pem,
        help_text="PEM bundle of the CAs whose client certificates this route accepts (public material, shown as "
                  "stored); required unless client_certificate is `off`.")
    subject_header = serializers.CharField(
        required=False, allow_blank=True, default=tls_policy.DEFAULT_SUBJECT_HEADER,
        help_text="The request header that carries the verified subject (RFC 4514) upstream; a client's own copy "
                  "is always removed; empty: none.")
