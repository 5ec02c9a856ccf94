"""CORS policies: which origins are allowed, the preflight answer, the fields of actual responses, bad blocks."""
from __future__ import annotations

import pytest

from protocols.block_errors import BlockError
from protocols.guards import CorsPolicy, CorsRejected, preflight_method


def policy(**block) -> CorsPolicy:
    compiled = CorsPolicy.from_config({"origins": ["https://app.example.com"], **block})
    assert compiled is not None
    return compiled


def preflight_headers(origin: str = "https://app.example.com", method: str = "PUT",
                      requested: str | None = None) -> list[tuple[bytes, bytes]]:
    headers = [(b"origin", origin.encode()), (b"access-control-request-method", method.encode())]
    if requested is not None:
        headers.append((b"access-control-request-headers", requested.encode()))
    return headers


def fields(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {name.decode(): value.decode() for name, value in headers}


def test_an_exact_origin_is_allowed_and_others_are_not():
    cors = policy()
    assert cors.allows("https://app.example.com")
    assert not cors.allows("https://evil.example.com")
    assert not cors.allows("http://app.example.com")


def test_a_wildcard_origin_matches_subdomains_but_not_the_bare_domain_or_look_alikes():
    cors = policy(origins=["https://*.example.com"])
    assert cors.allows("https://a.example.com")
    assert cors.allows("https://a.b.example.com")
    assert not cors.allows("https://example.com")
    assert not cors.allows("https://evilexample.com")
    assert not cors.allows("https://example.com.evil.net")
    assert not cors.allows("http://a.example.com")


def test_a_port_wildcard_allows_any_port_of_that_host_only():
    cors = policy(origins=["http://localhost:*"])
    assert cors.allows("http://localhost:3000")
    assert cors.allows("http://localhost:8080")
    assert not cors.allows("http://localhost.evil.net:3000")


def test_an_origin_with_a_path_or_credentials_never_matches():
    cors = policy(origins=["https://*.example.com"])
    assert not cors.allows("https://a.example.com/path")
    assert not cors.allows("https://user@a.example.com")


def test_origins_compare_without_regard_to_case():
    assert policy().allows("HTTPS://App.Example.com")


def test_the_preflight_is_answered_with_204_and_the_allowed_methods():
    status, headers = policy().preflight(preflight_headers())
    assert status == 204
    answer = fields(headers)
    assert answer["access-control-allow-origin"] == "https://app.example.com"
    assert answer["access-control-allow-methods"] == "GET, HEAD, PUT, PATCH, POST, DELETE"
    assert answer["access-control-max-age"] == "600"
    assert "Origin" in answer["vary"]


def test_the_preflight_reflects_the_requested_headers_when_none_are_configured():
    _, headers = policy().preflight(preflight_headers(requested="Content-Type, X-Trace"))
    assert fields(headers)["access-control-allow-headers"] == "Content-Type, X-Trace"


def test_the_preflight_refuses_an_origin_that_is_not_allowed():
    with pytest.raises(CorsRejected) as caught:
        policy().preflight(preflight_headers(origin="https://evil.example.com"))
    assert caught.value.status == 403
    assert "https://evil.example.com" in caught.value.message


def test_the_preflight_refuses_a_method_that_is_not_allowed():
    with pytest.raises(CorsRejected, match="method DELETE"):
        policy(methods=["GET", "POST"]).preflight(preflight_headers(method="DELETE"))


def test_the_preflight_refuses_a_header_that_is_not_listed():
    cors = policy(headers=["Content-Type"])
    with pytest.raises(CorsRejected, match="header X-Secret"):
        cors.preflight(preflight_headers(requested="content-type, X-Secret"))


def test_listed_headers_are_matched_without_regard_to_case():
    _, headers = policy(headers=["Content-Type"]).preflight(preflight_headers(requested="content-type"))
    assert fields(headers)["access-control-allow-headers"] == "Content-Type"


def test_an_options_request_without_request_method_is_not_a_preflight():
    assert policy().preflight([(b"origin", b"https://app.example.com")]) is None
    assert preflight_method("OPTIONS", [(b"origin", b"https://app.example.com")]) is None


def test_a_preflight_is_matched_with_the_method_it_asks_about():
    assert preflight_method("OPTIONS", preflight_headers(method="PATCH")) == "PATCH"
    assert preflight_method("GET", preflight_headers(method="PATCH")) is None


def test_credentials_add_allow_credentials_to_preflights_and_responses():
    cors = policy(credentials=True)
    _, headers = cors.preflight(preflight_headers())
    assert fields(headers)["access-control-allow-credentials"] == "true"
    assert fields(cors.response_headers(b"https://app.example.com"))["access-control-allow-credentials"] == "true"


def test_an_allowed_origin_gets_itself_back_with_exposed_headers_and_vary():
    answer = fields(policy(exposed_headers=["X-Total"]).response_headers(b"https://app.example.com"))
    assert answer == {"access-control-allow-origin": "https://app.example.com",
                      "access-control-expose-headers": "X-Total", "vary": "Origin"}


def test_a_disallowed_origin_gets_no_cors_field_but_vary():
    assert policy().response_headers(b"https://evil.example.com") == [(b"vary", b"Origin")]


def test_any_origin_without_credentials_answers_a_star():
    assert CorsPolicy.from_config({"origins": ["*"]}).response_headers(b"https://x.test") == [
        (b"access-control-allow-origin", b"*")]


def test_any_origin_with_credentials_is_refused():
    with pytest.raises(BlockError) as caught:
        CorsPolicy.from_config({"origins": ["*"], "credentials": True})
    assert "origins" in caught.value.errors


def test_the_null_origin_is_refused():
    with pytest.raises(BlockError) as caught:
        CorsPolicy.from_config({"origins": ["null"]})
    assert "sandboxed" in caught.value.errors["origins[0]"][0]


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/", "https://a.example.com/x",
                                    "https://*", "https://a.*.com", "https://app.example.com:99999"])
def test_an_origin_that_is_not_scheme_and_host_is_refused(origin):
    with pytest.raises(BlockError) as caught:
        CorsPolicy.from_config({"origins": [origin]})
    assert "origins[0]" in caught.value.errors


def test_a_block_without_origins_is_refused():
    with pytest.raises(BlockError) as caught:
        CorsPolicy.from_config({"credentials": False})
    assert caught.value.errors["origins"][0].startswith("List the origins")


def test_an_unknown_key_is_refused_so_a_typo_does_not_go_unnoticed():
    with pytest.raises(BlockError) as caught:
        CorsPolicy.from_config({"origins": ["*"], "orgins": ["https://a.test"]})
    assert caught.value.errors[""][0].startswith("Unknown key 'orgins'")


def test_a_disabled_block_compiles_to_no_policy():
    assert CorsPolicy.from_config({"enabled": False}) is None
    assert CorsPolicy.from_config(None) is None
