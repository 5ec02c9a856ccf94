"""routes.access_blocks: a route's `jwt`, `rate_limit`, `ftp` and `websocket` blocks and the gateway-wide `jwt` and
`rate_limit` are checked at save time by the data plane's own rules, each error at the path it is about."""
from __future__ import annotations

import socket

import pytest

from protocols.ftp.config import ftp_settings
from protocols.websocket.config import websocket_policy
from routes import import_export, services
from routes.validation import normalize_route, unknown_keys, validate_route
from tests.protocols.auth.tokens import rsa_key

SECRET = "a-route-secret-of-more-than-32-bytes-0123"
FTP_PASSWORD = "ftp-pass\r\nDELE important.csv"


def errors_of(data):
    return validate_route(normalize_route(data))


def ftp_route(route_doc, **fields):
    return route_doc(protocol="ftp", external_path="/files", backends=[{"host": "ftp://10.0.0.7"}], **fields)


def websocket_route(route_doc, **fields):
    return route_doc(protocol="websocket", external_path="/chat", backends=[{"host": "ws://10.0.0.8"}], **fields)


# --- rate_limit ------------------------------------------------------------------------------------------------

def test_a_rate_limit_that_does_not_compile_is_refused_at_the_key_it_names(route_doc):
    errors = errors_of(route_doc(rate_limit={"limit": 10, "window_type": "leaky_bucket"}))
    assert errors == {"rate_limit.window_type": ["Must be fixed_window, sliding_window or token_bucket."]}


def test_a_rate_limit_without_a_limit_is_refused_on_the_block(route_doc):
    assert list(errors_of(route_doc(rate_limit={"window_s": 60}))) == ["rate_limit"]


def test_a_disabled_rate_limit_needs_no_limit_and_is_accepted(route_doc):
    # How a route opts out of the gateway-wide limit.
    assert errors_of(route_doc(rate_limit={"enabled": False})) == {}


def test_an_unknown_rate_limit_key_is_refused_by_path(route_doc):
    assert list(errors_of(route_doc(rate_limit={"limit": 10, "windw_s": 60}))) == ["rate_limit.windw_s"]


def test_the_earlier_gateways_rate_limit_block_is_accepted(route_doc):
    block = {"strategy": "PerIP", "requests_per_window": 100, "window_duration": 60, "burst_allowance": 20,
             "window_type": "SlidingWindow", "enable_redis": False, "redis_key_prefix": "kairos_rl"}
    assert errors_of(route_doc(rate_limit=block)) == {}


# --- jwt -------------------------------------------------------------------------------------------------------

def test_a_jwt_secret_too_short_for_hs256_is_refused_without_showing_it(route_doc):
    errors = errors_of(route_doc(jwt={"secret": "short-secret"}))
    assert list(errors) == ["jwt.secret"]
    assert "short-secret" not in repr(errors)


def test_a_jwt_block_accepting_unsigned_tokens_is_refused_at_its_algorithms(route_doc):
    assert list(errors_of(route_doc(jwt={"secret": SECRET, "algorithms": ["none"]}))) == ["jwt.algorithms"]


def test_a_jwt_block_without_any_key_is_refused_on_the_block(route_doc):
    assert list(errors_of(route_doc(jwt={"issuer": "https://idp.example.com"}))) == ["jwt"]


def test_an_unknown_jwt_key_is_refused_by_path(route_doc):
    assert list(errors_of(route_doc(jwt={"secret": SECRET, "leeway": 5}))) == ["jwt.leeway"]


def test_a_jwks_url_at_a_metadata_address_is_refused_on_a_route(route_doc):
    errors = errors_of(route_doc(jwt={"jwks_url": "http://169.254.169.254/jwks.json"}))
    assert list(errors) == ["jwt.jwks_url"]


def test_a_jwks_url_is_validated_without_fetching_it(route_doc):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        port = listener.getsockname()[1]
        block = {"jwks_url": f"http://127.0.0.1:{port}/jwks.json", "algorithms": ["RS256"]}
        assert errors_of(route_doc(jwt=block)) == {}
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected


def test_a_jwt_block_on_an_ftp_route_is_refused(route_doc):
    assert list(errors_of(ftp_route(route_doc, jwt={"secret": SECRET}))) == ["jwt"]


def test_a_jwt_block_on_a_websocket_route_is_accepted(route_doc):
    assert errors_of(websocket_route(route_doc, jwt={"secret": SECRET})) == {}


def test_a_route_jwt_block_with_rustas_keys_reports_no_unknown_keys(route_doc):
    block = {"secret": SECRET, "required_scopes": ["orders:read"], "forward_claims": {"sub": "X-User-Id"}}
    assert unknown_keys(route_doc(jwt=block)) == []


# --- ftp -------------------------------------------------------------------------------------------------------

def test_a_complete_ftp_block_is_accepted_and_read_back_unchanged_by_the_ftp_gateway(route_doc):
    block = {"username": "reports", "password": "pw", "passthrough_basic_auth": False, "root": "/srv/reports"}
    assert errors_of(ftp_route(route_doc, ftp=block)) == {}
    settings = ftp_settings("files", {"ftp": block})
    assert (settings.username, settings.password, settings.passthrough, settings.root) == (
        "reports", "pw", False, "/srv/reports")


def test_an_ftp_block_on_an_http_route_is_refused(route_doc):
    assert list(errors_of(route_doc(ftp={"username": "reports"}))) == ["ftp"]


def test_an_ftp_password_with_a_line_break_is_refused_without_showing_it(route_doc):
    errors = errors_of(ftp_route(route_doc, ftp={"username": "reports", "password": FTP_PASSWORD}))
    assert list(errors) == ["ftp.password"]
    assert "DELE" not in repr(errors)


def test_an_ftp_root_above_the_servers_root_is_refused(route_doc):
    assert list(errors_of(ftp_route(route_doc, ftp={"root": "/../etc"}))) == ["ftp.root"]


def test_an_ftp_passthrough_that_is_not_a_boolean_is_refused(route_doc):
    errors = errors_of(ftp_route(route_doc, ftp={"passthrough_basic_auth": "yes"}))
    assert errors == {"ftp.passthrough_basic_auth": ["Must be true or false."]}


def test_an_ftp_username_that_is_not_a_string_is_refused(route_doc):
    assert list(errors_of(ftp_route(route_doc, ftp={"username": 7}))) == ["ftp.username"]


def test_a_misspelt_ftp_key_is_refused_rather_than_logging_in_anonymously(route_doc):
    assert list(errors_of(ftp_route(route_doc, ftp={"pasword": "pw"}))) == ["ftp.pasword"]


# --- websocket -------------------------------------------------------------------------------------------------

def test_a_websocket_block_is_accepted_and_read_back_unchanged_by_the_websocket_proxy(route_doc):
    block = {"max_message_bytes": 65536, "idle_timeout_s": 0}
    assert errors_of(websocket_route(route_doc, websocket=block)) == {}
    policy = websocket_policy("chat", {"websocket": block})
    assert (policy.max_message_bytes, policy.idle_timeout) == (65536, 0)


@pytest.mark.parametrize(("key", "value"), [
    ("max_message_bytes", 0), ("max_message_bytes", 2**31), ("max_message_bytes", "1MB"),
    ("idle_timeout_s", -1), ("idle_timeout_s", 8 * 24 * 3600), ("idle_timeout_s", True),
])
def test_a_websocket_limit_out_of_range_is_refused_at_its_key(route_doc, key, value):
    assert list(errors_of(websocket_route(route_doc, websocket={key: value}))) == [f"websocket.{key}"]


def test_a_websocket_block_on_an_http_route_is_refused(route_doc):
    assert list(errors_of(route_doc(websocket={"idle_timeout_s": 60}))) == ["websocket"]


def test_a_block_that_is_not_an_object_is_refused(route_doc):
    assert errors_of(websocket_route(route_doc, websocket=[1])) == {"websocket": ["Must be an object or null."]}


# --- the gateway-wide blocks, on import ------------------------------------------------------------------------

@pytest.mark.django_db
def test_a_gateway_wide_rate_limit_that_does_not_compile_refuses_the_import():
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config({"rate_limit": {"limit": 10, "store": "memcached"}, "routers": []},
                               actor=None, source="import")
    assert list(caught.value.errors) == ["rate_limit.store"]
    assert services.gateway_settings().rate_limit is None


@pytest.mark.django_db
def test_a_gateway_wide_jwt_secret_too_short_refuses_the_import():
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config({"jwt": {"secret": "short"}, "routers": []}, actor=None, source="import")
    assert list(caught.value.errors) == ["jwt.secret"]


# --- how a compiler's error becomes a field error --------------------------------------------------------------

@pytest.mark.parametrize(("blocks", "expected"), [
    (lambda pem: {"rate_limit": {"limit": 5, "window_s": 60, "scope": 5}},
     {"rate_limit.scope": ['Must be a name or a list, e.g. ["ip", "route"].']}),
    (lambda pem: {"jwt": {"secret": SECRET, "forward_claims": {"sub": "Host"}}},
     {"jwt.forward_claims": ["A claim may not set Host; the proxy owns that field."]}),
    (lambda pem: {"jwt": {"public_key": pem, "algorithm": "RS256", "algorithms": ["PS256"]}},
     {"jwt.algorithms": ["A configured key uses RS256, which jwt.algorithms does not list."]}),
    (lambda pem: {"jwt": {"public_keys": [{"pem": pem, "algorithm": "RS256"}, {"pem": "x", "algorithm": "RS256"}]}},
     {"jwt.public_keys[1]": ["Must be a PEM text (-----BEGIN PUBLIC KEY----- or a certificate)."]}),
    (lambda pem: {"jwt": {"issuer": "https://idp.example.com"}},
     {"jwt": ["The jwt block needs a key: secret, public_key + algorithm, public_keys or jwks_url."]}),
])
def test_a_compiler_error_is_filed_under_its_path_in_the_block(route_doc, blocks, expected):
    assert errors_of(route_doc(**blocks(rsa_key().public_pem))) == expected
