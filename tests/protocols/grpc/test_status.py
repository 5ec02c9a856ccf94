"""protocols.grpc.status: the gateway's errors, a backend's resets and HTTP statuses as gRPC codes; grpc-message."""
from __future__ import annotations

from protocols.auth.consumers import MissingCredentials
from protocols.errors import (
    GatewayError,
    InternalGatewayError,
    NoHealthyBackend,
    NoRoute,
    UpstreamConnectTimeout,
    UpstreamRefused,
    UpstreamReset,
    UpstreamTimeout,
)
from protocols.grpc import status
from protocols.guards.refusals import ClientForbidden, PayloadTooLarge
from protocols.limits.decision import Decision, RateLimited
from protocols.upstream.http2 import UpstreamStreamReset


def test_the_documented_gateway_errors_have_their_grpc_codes():
    assert status.code_of(NoHealthyBackend("r", backends=1, open_breakers=1)) == status.UNAVAILABLE
    assert status.code_of(UpstreamRefused("b:1")) == status.UNAVAILABLE
    assert status.code_of(UpstreamReset("b:1")) == status.UNAVAILABLE
    assert status.code_of(UpstreamTimeout("b:1", 1.0)) == status.DEADLINE_EXCEEDED
    assert status.code_of(NoRoute("POST", "/x.Y/Z")) == status.UNIMPLEMENTED
    assert status.code_of(InternalGatewayError()) == status.INTERNAL


def test_a_connect_timeout_is_unavailable_because_nothing_was_sent():
    assert status.code_of(UpstreamConnectTimeout("b:1", 1.0)) == status.UNAVAILABLE


def test_credential_rate_limit_and_guard_refusals_have_their_grpc_codes():
    assert status.code_of(MissingCredentials("jwt")) == status.UNAUTHENTICATED
    assert status.code_of(RateLimited("r", Decision(False, 1, 0, 60.0, 60.0))) == status.RESOURCE_EXHAUSTED
    assert status.code_of(ClientForbidden()) == status.PERMISSION_DENIED
    assert status.code_of(PayloadTooLarge(10)) == status.RESOURCE_EXHAUSTED


def test_an_error_of_another_type_goes_by_its_http_status():
    assert status.code_of(GatewayError(401, "new_auth_kind", "no")) == status.UNAUTHENTICATED
    assert status.code_of(GatewayError(418, "teapot", "no")) == status.INVALID_ARGUMENT
    assert status.code_of(GatewayError(500, "boom", "no")) == status.INTERNAL


def test_a_backends_stream_reset_follows_grpcs_mapping():
    assert status.code_of(UpstreamStreamReset("b:1", 0x7)) == status.UNAVAILABLE  # REFUSED_STREAM
    assert status.code_of(UpstreamStreamReset("b:1", 0x8)) == status.CANCELLED
    assert status.code_of(UpstreamStreamReset("b:1", 0xB)) == status.RESOURCE_EXHAUSTED  # ENHANCE_YOUR_CALM
    assert status.code_of(UpstreamStreamReset("b:1", 0x2)) == status.INTERNAL


def test_a_backends_http_status_without_grpc_status_follows_grpcs_mapping():
    assert status.code_of_http_status(404) == status.UNIMPLEMENTED
    assert status.code_of_http_status(503) == status.UNAVAILABLE
    assert status.code_of_http_status(418) == status.UNKNOWN
    assert status.code_of_http_status(200) == status.INTERNAL


def test_grpc_message_is_percent_encoded_outside_printable_ascii_and_for_percent():
    assert status.encode_message("Route 'a' has no backend.") == b"Route 'a' has no backend."
    assert status.encode_message("50% caf\u00e9\n") == b"50%25 caf%C3%A9%0A"
