"""The documented gateway errors: statuses, stable types and the JSON body every client can parse."""
from __future__ import annotations

import json

import pytest

from protocols import errors


@pytest.mark.parametrize(("error", "status", "type_"), [
    (errors.NoRoute("GET", "/x"), 404, "route_not_found"),
    (errors.MethodNotAllowed("POST", "/x", "GET, HEAD"), 405, "method_not_allowed"),
    (errors.NoHealthyBackend("r"), 503, "no_backend"),
    (errors.UpstreamRefused("h:1"), 502, "upstream_connect_refused"),
    (errors.UpstreamNameNotResolved("h:1"), 502, "upstream_name_not_resolved"),
    (errors.UpstreamReset("h:1"), 502, "upstream_reset"),
    (errors.UpstreamInvalidResponse("h:1", "bad"), 502, "upstream_invalid_response"),
    (errors.UpstreamConnectTimeout("h:1", 0.2), 504, "upstream_connect_timeout"),
    (errors.UpstreamTimeout("h:1", 0.2), 504, "upstream_timeout"),
    (errors.UpgradeRequired("r"), 426, "upgrade_required"),
    (errors.ProtocolNotSupported("r", "dns"), 501, "protocol_not_supported"),
    (errors.InternalGatewayError(), 502, "gateway_error"),
])
def test_each_error_answers_its_documented_status_and_type(error, status, type_):
    answered_status, headers, body = error.response("req-9")
    assert answered_status == status
    assert json.loads(body) == {"error": error.message, "type": type_, "request_id": "req-9"}
    assert (b"content-length", str(len(body)).encode()) in headers


def test_a_websocket_route_asks_for_an_upgrade():
    assert errors.protocol_error("chat", "websocket").status == 426
    assert errors.protocol_error("files", "ftp").status == 501
