"""JwtPolicy.authenticate against tokens from two JOSE libraries and hand-built attacks: keys pinned to their
algorithm, time claims, issuer, audience, required claims, scopes and roles, forwarded claims, the cache."""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jwt as pyjwt
import pytest

from protocols.auth import AuthFailure, JwtPolicy, Principal, authorization_value
from tests.protocols.auth.tokens import (
    AUDIENCE,
    ISSUER,
    MAKERS,
    SECRET,
    b64,
    bearer,
    claims,
    ec_key,
    ed_key,
    forged,
    rsa_key,
    with_pyjwt,
)
from tests.support.compat import fixture, kairos_examples, load

makers = pytest.mark.parametrize("make", list(MAKERS.values()), ids=list(MAKERS))


def policy(**block: Any) -> JwtPolicy:
    return JwtPolicy.from_config({"issuer": ISSUER, "audience": AUDIENCE, **block})


def secret_policy(**block: Any) -> JwtPolicy:
    return policy(secret=SECRET, **block)


def rsa_policy(**block: Any) -> JwtPolicy:
    return policy(public_key=rsa_key().public_pem, algorithm="RS256", **block)


def accept(p: JwtPolicy, token: bytes) -> Principal:
    return asyncio.run(p.authenticate(bearer(token)))


def refuse(p: JwtPolicy, authorization: bytes | None) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        asyncio.run(p.authenticate(authorization))
    return caught.value


def refuse_token(p: JwtPolicy, token: bytes) -> AuthFailure:
    failure = refuse(p, bearer(token))
    assert failure.status == 401
    assert failure.error == "invalid_token"
    return failure


# --- valid tokens, every key kind, both libraries ---------------------------------------------------------

@makers
@pytest.mark.parametrize(("alg", "key", "block"), [
    ("HS256", lambda: SECRET, lambda: {"secret": SECRET}),
    ("HS512", lambda: SECRET * 2, lambda: {"secret": SECRET * 2, "algorithms": ["HS512"]}),
    ("RS256", rsa_key, lambda: {"public_key": rsa_key().public_pem, "algorithm": "RS256"}),
    ("PS256", rsa_key, lambda: {"public_key": rsa_key().public_pem, "algorithm": "PS256"}),
    ("ES256", ec_key, lambda: {"public_key": ec_key().public_pem, "algorithm": "ES256"}),
    ("ES384", lambda: ec_key("P-384"), lambda: {"public_key": ec_key("P-384").public_pem, "algorithm": "ES384"}),
    ("EdDSA", ed_key, lambda: {"public_key": ed_key().public_pem, "algorithm": "EdDSA"}),
], ids=["HS256", "HS512", "RS256", "PS256", "ES256", "ES384", "EdDSA"])
def test_it_accepts_a_valid_token(make, alg, key, block):
    principal = accept(policy(**block()), make(claims(), key(), alg))
    assert principal.subject == "user-42"
    assert principal.claims["iss"] == ISSUER


@makers
def test_it_accepts_each_of_several_public_keys_by_kid(make):
    p = policy(public_keys=[
        {"pem": rsa_key(0).public_pem, "algorithm": "RS256", "kid": "a"},
        {"pem": rsa_key(1).public_pem, "algorithm": "RS256", "kid": "b"},
        {"pem": ec_key().public_pem, "algorithm": "ES256"},
    ])
    assert accept(p, make(claims(sub="a"), rsa_key(0), "RS256", kid="a")).subject == "a"
    assert accept(p, make(claims(sub="b"), rsa_key(1), "RS256", kid="b")).subject == "b"
    assert accept(p, make(claims(sub="e"), ec_key(), "ES256")).subject == "e"


@makers
def test_it_rejects_a_token_whose_kid_names_another_key(make):
    p = policy(public_keys=[
        {"pem": rsa_key(0).public_pem, "algorithm": "RS256", "kid": "a"},
        {"pem": rsa_key(1).public_pem, "algorithm": "RS256", "kid": "b"},
    ])
    failure = refuse_token(p, make(claims(), rsa_key(0), "RS256", kid="b"))
    assert "signature" in failure.description


@pytest.mark.parametrize("path", kairos_examples())
def test_the_earlier_gateways_jwt_blocks_accept_their_tokens(path):
    block = load(path)["jwt"]
    extra = {name: int(time.time()) for name in block["required_claims"] if name in ("exp", "iat")}
    token = with_pyjwt(claims(iss=block["issuer"], aud=block["audience"], **extra), block["secret"], "HS256")
    assert accept(JwtPolicy.from_config(block), token).subject == "user-42"


# --- attacks ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_it_rejects_an_unsigned_token(alg):
    failure = refuse_token(secret_policy(), forged({"alg": alg, "typ": "JWT"}, claims()))
    assert "algorithm" in failure.description


def test_it_rejects_an_unsigned_token_made_by_pyjwt():
    token = pyjwt.encode(claims(), None, algorithm="none").encode()
    refuse_token(secret_policy(), token)
    refuse_token(rsa_policy(), token)


def test_it_rejects_an_unsigned_token_that_keeps_a_real_signature():
    header, payload, signature = with_pyjwt(claims(), SECRET, "HS256").split(b".")
    none_header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    refuse_token(secret_policy(), none_header + b"." + payload + b"." + signature)


def test_it_rejects_an_hs256_token_signed_with_the_rsa_public_key():
    # The classic confusion: the attacker knows the public PEM and uses it as an HMAC secret.
    pem = rsa_key().public_pem.encode()
    token = forged({"alg": "HS256", "typ": "JWT"}, claims(), hmac_key=pem)
    failure = refuse_token(rsa_policy(), token)
    assert "algorithm" in failure.description


def test_it_rejects_the_confusion_even_when_hs256_is_also_configured():
    p = policy(secret=SECRET, public_key=rsa_key().public_pem, algorithm="RS256", algorithms=["HS256", "RS256"])
    for variant in (rsa_key().public_pem, rsa_key().public_pem.strip(), rsa_key().public_pem.replace("\n", "")):
        token = forged({"alg": "HS256", "typ": "JWT"}, claims(), hmac_key=variant.encode())
        assert "signature" in refuse_token(p, token).description
    assert accept(p, with_pyjwt(claims(), SECRET, "HS256")).subject == "user-42"
    assert accept(p, with_pyjwt(claims(), rsa_key(), "RS256")).subject == "user-42"


@makers
@pytest.mark.parametrize(("alg", "key"), [
    ("RS512", rsa_key), ("PS256", rsa_key), ("ES256", ec_key), ("HS256", lambda: SECRET),
], ids=["RS512", "PS256", "ES256", "HS256"])
def test_it_rejects_an_algorithm_it_was_not_configured_for(make, alg, key):
    failure = refuse_token(rsa_policy(), make(claims(), key(), alg))
    assert "algorithm" in failure.description


@makers
def test_it_rejects_an_hs384_token_when_only_hs256_is_configured(make):
    refuse_token(secret_policy(), make(claims(), SECRET * 2, "HS384"))


@makers
def test_it_rejects_a_token_signed_with_another_key(make):
    refuse_token(rsa_policy(), make(claims(), rsa_key(1), "RS256"))
    refuse_token(secret_policy(), make(claims(), SECRET + "-but-not-quite", "HS256"))


@makers
def test_it_rejects_a_token_whose_payload_was_changed(make):
    header, _, signature = make(claims(sub="alice"), rsa_key(), "RS256").split(b".")
    tampered = header + b"." + b64(json.dumps(claims(sub="admin")).encode()) + b"." + signature
    refuse_token(rsa_policy(), tampered)


def test_it_rejects_a_token_with_a_critical_extension():
    token = forged({"alg": "HS256", "crit": ["exp"], "exp": 1}, claims(), hmac_key=SECRET.encode())
    refuse_token(secret_policy(), token)


@pytest.mark.parametrize("token", [b"abc", b"a.b", b"a.b.c", b"e30.e30.", b"....."])
def test_it_rejects_a_token_that_is_not_a_jwt(token):
    refuse_token(secret_policy(), token)


# --- the Authorization field ------------------------------------------------------------------------------

def test_a_missing_token_gets_a_bare_bearer_challenge():
    failure = refuse(secret_policy(), None)
    assert (failure.status, failure.error) == (401, "")
    assert failure.www_authenticate == b"Bearer"
    assert json.loads(failure.response("r")[2])["type"] == "unauthorized"


def test_another_scheme_counts_as_no_token():
    failure = refuse(secret_policy(), b"Basic dXNlcjpwYXNz")
    assert (failure.status, failure.error) == (401, "")


@pytest.mark.parametrize("value", [b"Bearer", b"Bearer   ", b"Bearer a b", b"Bearer tok\xe9n", b"", b"  "])
def test_a_malformed_authorization_field_is_an_invalid_request(value):
    failure = refuse(secret_policy(), value)
    assert (failure.status, failure.error) == (401, "invalid_request")
    assert failure.www_authenticate.startswith(b'Bearer error="invalid_request", error_description="')


def test_the_scheme_is_case_insensitive():
    assert asyncio.run(secret_policy().authenticate(b"bearer " + with_pyjwt(claims(), SECRET, "HS256")))


def test_a_repeated_authorization_field_is_malformed():
    assert authorization_value([(b"authorization", b"Bearer x")]) == b"Bearer x"
    assert authorization_value([(b"host", b"h")]) is None
    assert authorization_value([(b"authorization", b"Bearer x"), (b"authorization", b"Bearer y")]) == b""


def test_the_challenge_carries_the_realm_and_a_quoted_description():
    failure = refuse(secret_policy(realm="rusta"), bearer(b"x.y.z"))
    assert failure.www_authenticate == (
        b'Bearer realm="rusta", error="invalid_token", error_description="The token is not a well-formed JWT."')


# --- time claims --------------------------------------------------------------------------------------------

@makers
def test_it_rejects_an_expired_token(make):
    now = int(time.time())
    failure = refuse_token(secret_policy(), make(claims(iat=now - 600, exp=now - 31), SECRET, "HS256"))
    assert failure.description == "The token has expired."
    assert b'error_description="The token has expired."' in failure.www_authenticate


@makers
def test_it_accepts_a_token_expired_within_the_leeway(make):
    now = int(time.time())
    assert accept(secret_policy(), make(claims(iat=now - 600, exp=now - 20), SECRET, "HS256"))
    refuse_token(secret_policy(leeway_s=5), make(claims(iat=now - 600, exp=now - 20), SECRET, "HS256"))


@makers
def test_it_rejects_a_token_that_is_not_valid_yet(make):
    now = int(time.time())
    failure = refuse_token(secret_policy(), make(claims(nbf=now + 120), SECRET, "HS256"))
    assert "nbf" in failure.description
    assert accept(secret_policy(), make(claims(nbf=now + 10), SECRET, "HS256"))


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_it_rejects_a_time_claim_of_nan(claim):
    token = forged({"alg": "HS256", "typ": "JWT"}, claims(**{claim: float("nan")}), hmac_key=SECRET.encode())
    assert claim in refuse_token(secret_policy(), token).description


@makers
def test_it_rejects_a_token_issued_in_the_future(make):
    now = int(time.time())
    assert "iat" in refuse_token(secret_policy(), make(claims(iat=now + 120), SECRET, "HS256")).description


@makers
def test_it_rejects_a_token_without_expiry_unless_told_not_to(make):
    token = make(claims(exp=None), SECRET, "HS256")
    assert "exp" in refuse_token(secret_policy(), token).description
    assert accept(secret_policy(require_exp=False), token)


@pytest.mark.parametrize("exp", ["9999999999", True, [1], None, float("nan"), float("inf")])
def test_it_rejects_an_expiry_that_is_not_a_number(exp):
    payload = claims()
    payload["exp"] = exp
    token = forged({"alg": "HS256", "typ": "JWT"}, payload, hmac_key=SECRET.encode())
    refuse_token(secret_policy(), token)


# --- issuer, audience, required claims ------------------------------------------------------------------------

@makers
def test_it_rejects_a_wrong_issuer(make):
    failure = refuse_token(secret_policy(), make(claims(iss="https://evil.test"), SECRET, "HS256"))
    assert "issuer" in failure.description
    refuse_token(secret_policy(), make(claims(iss=None), SECRET, "HS256"))


@makers
def test_it_rejects_a_wrong_audience(make):
    failure = refuse_token(secret_policy(), make(claims(aud="another-api"), SECRET, "HS256"))
    assert "audience" in failure.description
    refuse_token(secret_policy(), make(claims(aud=None), SECRET, "HS256"))


@makers
def test_it_accepts_a_token_whose_audience_list_names_this_api(make):
    assert accept(secret_policy(), make(claims(aud=["billing", AUDIENCE]), SECRET, "HS256"))
    refuse_token(secret_policy(), make(claims(aud=["billing", "search"]), SECRET, "HS256"))


@makers
def test_a_configured_audience_list_accepts_any_of_them(make):
    p = secret_policy(audience=["rusta-api", "rusta-admin"])
    assert accept(p, make(claims(aud="rusta-admin"), SECRET, "HS256"))
    refuse_token(p, make(claims(aud="billing"), SECRET, "HS256"))


def test_a_policy_without_audience_rejects_an_audience_restricted_token():
    p = JwtPolicy.from_config({"secret": SECRET})
    assert accept(p, with_pyjwt(claims(aud=None), SECRET, "HS256"))
    refuse_token(p, with_pyjwt(claims(), SECRET, "HS256"))


@makers
def test_it_rejects_a_token_missing_a_required_claim(make):
    p = secret_policy(required_claims=["sub", "tenant"])
    failure = refuse_token(p, make(claims(), SECRET, "HS256"))
    assert failure.description == "The token lacks the required claim 'tenant'."
    refuse_token(p, make(claims(tenant=None, sub=None), SECRET, "HS256"))
    assert accept(p, make(claims(tenant="t1"), SECRET, "HS256"))


def test_the_earlier_gateways_required_claims_are_enforced():
    block = load(fixture("advanced.json"))["jwt"]
    assert block["required_claims"] == ["sub", "exp", "iat"]
    p = JwtPolicy.from_config(block)
    base = claims(iss=block["issuer"], aud=block["audience"])
    for missing in ("sub", "iat"):
        token = with_pyjwt({k: v for k, v in base.items() if k != missing}, block["secret"], "HS256")
        assert missing in refuse_token(p, token).description


# --- scopes, roles, forwarded claims --------------------------------------------------------------------------

@makers
@pytest.mark.parametrize("granted", [
    {"scope": "orders:read orders:write"}, {"scp": ["orders:write", "x"]}, {"scopes": ["orders:write"]},
], ids=["scope", "scp", "scopes"])
def test_it_accepts_the_required_scope_from_any_scope_claim(make, granted):
    principal = accept(secret_policy(required_scopes=["orders:write"]), make(claims(**granted), SECRET, "HS256"))
    assert "orders:write" in principal.scopes


@makers
def test_a_missing_scope_is_forbidden(make):
    p = secret_policy(required_scopes=["orders:write", "orders:read"])
    failure = refuse(p, bearer(make(claims(scope="orders:read"), SECRET, "HS256")))
    assert (failure.status, failure.error) == (403, "insufficient_scope")
    assert failure.www_authenticate == (
        b'Bearer error="insufficient_scope", error_description="The token lacks the scope orders:write.", '
        b'scope="orders:read orders:write"')
    assert json.loads(failure.response("r")[2])["type"] == "insufficient_scope"


def test_a_configured_scope_claim_is_the_only_one_read():
    p = secret_policy(required_scopes=["admin"], scope_claim="permissions")
    assert accept(p, with_pyjwt(claims(permissions=["admin"]), SECRET, "HS256"))
    assert refuse(p, bearer(with_pyjwt(claims(scope="admin"), SECRET, "HS256"))).status == 403


@makers
def test_a_missing_role_is_forbidden(make):
    p = secret_policy(required_roles=["admin"])
    assert refuse(p, bearer(make(claims(roles=["viewer"]), SECRET, "HS256"))).status == 403
    assert accept(p, make(claims(roles=["viewer", "admin"]), SECRET, "HS256")).roles == {"viewer", "admin"}


@makers
def test_configured_claims_become_upstream_headers(make):
    p = secret_policy(forward_claims={"sub": "X-User-Id", "tenant": "X-Tenant", "groups": "X-Groups",
                                      "absent": "X-Absent", "level": "X-Level"})
    principal = accept(p, make(claims(tenant="acme", groups=["a", "b"], level=3), SECRET, "HS256"))
    assert dict(principal.headers) == {b"x-user-id": b"user-42", b"x-tenant": b"acme", b"x-groups": b"a,b",
                                       b"x-level": b"3"}


def test_a_claim_with_a_line_break_is_not_forwarded():
    p = secret_policy(forward_claims={"sub": "X-User-Id"})
    principal = accept(p, with_pyjwt(claims(sub="evil\r\nX-Admin: 1"), SECRET, "HS256"))
    assert principal.headers == ()


def test_the_clients_copies_of_forwarded_headers_are_removed():
    p = secret_policy(forward_claims={"sub": "X-User-Id"})
    headers = [(b"x-user-id", b"forged"), (b"X-User-Id", b"forged"), (b"accept", b"*/*")]
    assert p.strip_forwarded(headers) == [(b"accept", b"*/*")]


# --- the verified-token cache -----------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def test_a_repeated_token_is_answered_from_the_cache():
    p = JwtPolicy.from_config({"secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE})
    token = with_pyjwt(claims(), SECRET, "HS256")
    first = accept(p, token)
    assert accept(p, token) is first
    assert len(p.cache) == 1


def test_a_cached_token_still_expires():
    clock = Clock()
    p = JwtPolicy.from_config({"secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE, "leeway_s": 0},
                              clock=clock)
    token = with_pyjwt(claims(exp=int(clock.now) + 10), SECRET, "HS256")
    assert accept(p, token)
    clock.now += 11
    assert refuse_token(p, token).description == "The token has expired."


def test_a_token_is_known_without_verifying_only_after_it_was_verified():
    p = secret_policy()
    value = bearer(with_pyjwt(claims(), SECRET, "HS256"))
    assert p.known(value) is None
    first = asyncio.run(p.authenticate(value))
    assert p.known(value) is first


def test_a_known_token_is_forgotten_when_it_expires():
    clock = Clock()
    p = JwtPolicy.from_config({"secret": SECRET, "issuer": ISSUER, "audience": AUDIENCE, "leeway_s": 0},
                              clock=clock)
    value = bearer(with_pyjwt(claims(exp=int(clock.now) + 10), SECRET, "HS256"))
    asyncio.run(p.authenticate(value))
    clock.now += 11
    assert p.known(value) is None


def test_failures_are_not_cached():
    p = secret_policy()
    for _ in range(3):
        refuse_token(p, with_pyjwt(claims(), SECRET + "x", "HS256"))
    assert len(p.cache) == 0
