"""OpenAPI shapes of a route's `ftp` and `websocket` blocks (`jwt` and `rate_limit` are documented by key in the
protocols.auth and protocols.limits package docstrings).

They document the blocks; validation is routes.access_blocks', reached through routes.services.
"""
from __future__ import annotations

from rest_framework import serializers

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
