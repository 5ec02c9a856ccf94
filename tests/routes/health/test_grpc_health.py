"""routes.health.grpc_health: the HealthCheckRequest a probe sends and the verdict on each kind of answer."""
from __future__ import annotations

from routes.health.grpc_health import Verdict, judge, request_body, service_name
from tests.support.grpc_backend import frame


def test_the_whole_server_is_asked_with_an_empty_message():
    assert (service_name("/"), request_body("")) == ("", b"\0\0\0\0\0")


def test_a_named_service_is_field_1_of_the_request():
    assert service_name("/my.pkg.Service") == "my.pkg.Service"
    assert request_body("my.pkg.Service") == frame(b"\x0a\x0emy.pkg.Service")


def test_serving_is_healthy():
    assert judge(200, None, "", frame(b"\x08\x01")) == Verdict(True, "grpc_serving", 1)


def test_not_serving_is_unhealthy_with_the_status_named():
    assert judge(200, None, "", frame(b"\x08\x02")) == Verdict(False, "grpc_not_serving", 2, "NOT_SERVING")


def test_an_empty_answer_message_is_status_unknown_and_unhealthy():
    assert judge(200, None, "", frame(b"")) == Verdict(False, "grpc_not_serving", 0, "UNKNOWN")


def test_unknown_fields_around_the_status_are_skipped():
    message = b"\x12\x03abc" + b"\x08\x01" + b"\x18\x96\x01"
    assert judge(200, None, "", frame(message)).ok is True


def test_an_error_status_in_the_headers_is_unhealthy_with_its_code_and_message():
    verdict = judge(200, "12", "Method%20not%20found", b"")
    assert verdict == Verdict(False, "grpc_status", 12, "Method not found")


def test_an_http_error_is_unhealthy_with_its_status():
    assert judge(503, None, "", b"") == Verdict(False, "status", 503)


def test_no_complete_message_is_unhealthy():
    assert judge(200, None, "", b"\0\0\0\0\x05\x08").reason == "grpc_no_message"
    assert judge(200, None, "", b"").reason == "grpc_no_message"


def test_a_malformed_message_is_invalid():
    assert judge(200, None, "", frame(b"\x08")).reason == "invalid"
