"""protocols.auth.consumers and a route's `auth` mode through AccessControl: which credential each mode takes, who
it resolves to, what the client gets when it is refused, and what goes upstream."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from protocols.auth.consumers import (
    DIRECTORY_SETTING,
    ConsumerDirectory,
    ConsumerIdentity,
    KeyGrant,
    key_digest,
    presented_key,
)
from protocols.errors import GatewayError
from protocols.http.access import AccessControl, RouteAccess
from protocols.table import RouteTable
from tests.protocols.auth.tokens import SECRET, bearer, claims, with_pyjwt
from tests.support.proxy import route

KEY = b"rk_billing-key-0123456789abcdefghij"
OLD_KEY = b"rk_billing-old-0123456789abcdefghij"
NOW = 1_800_000_000.0
BILLING = ConsumerIdentity("billing")
DIRECTORY = ConsumerDirectory(
    keys={key_digest(KEY): KeyGrant(BILLING), key_digest(OLD_KEY): KeyGrant(BILLING, expires_at=NOW + 60),
          key_digest(b"rk_frozen-key"): KeyGrant(ConsumerIdentity("frozen", enabled=False))},
    subjects={"alice": BILLING, "ghost": ConsumerIdentity("frozen", enabled=False)},
)


def access(auth: str = "none", *, clock: float = NOW, directory: ConsumerDirectory = DIRECTORY,
           protocol: str = "http", **spec: Any) -> RouteAccess:
    table = RouteTable([route("r", "/r", 9000, auth=auth, protocol=protocol, **spec)], version=1,
                       settings={"jwt": {"secret": SECRET}, DIRECTORY_SETTING: directory})
    compiled = AccessControl(clock=lambda: clock).compile(table.routes[0], table.settings)
    assert compiled is not None
    return compiled


def admit(route_access: RouteAccess, headers: list[tuple[bytes, bytes]]) -> Any:
    return asyncio.run(route_access.admit(headers, "10.0.0.1"))


def refused(route_access: RouteAccess, headers: list[tuple[bytes, bytes]]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        admit(route_access, headers)
    return caught.value


def token(sub: str = "alice") -> bytes:
    return with_pyjwt(claims(sub=sub, aud=None), SECRET, "HS256")


# --- Reading the key ---------------------------------------------------------------------------------------------

def test_the_key_is_read_from_x_api_key():
    assert presented_key([(b"x-api-key", KEY)]) == (KEY, None)


def test_the_key_is_read_from_a_bearer_authorization_that_starts_with_rk():
    assert presented_key([(b"authorization", b"Bearer " + KEY)]) == (KEY, None)


def test_a_bearer_jwt_is_not_taken_for_a_key():
    assert presented_key([(b"authorization", bearer(token()))]) == (None, bearer(token()))


def test_a_key_sent_twice_is_malformed():
    assert presented_key([(b"x-api-key", KEY), (b"x-api-key", KEY)])[0] == b""


# --- key mode ----------------------------------------------------------------------------------------------------

def test_a_key_route_admits_a_live_key_as_its_consumer():
    principal, _ = admit(access("key"), [(b"x-api-key", KEY)])
    assert (b"x-consumer-name", b"billing") in principal.headers


def test_a_key_route_without_a_key_is_401_unauthorized_with_an_api_key_challenge():
    error = refused(access("key"), [])
    assert (error.status, error.type) == (401, "unauthorized")
    assert dict(error.headers)[b"www-authenticate"].startswith(b"ApiKey")


def test_a_key_route_does_not_take_a_jwt_instead():
    assert refused(access("key"), [(b"authorization", bearer(token()))]).type == "unauthorized"


def test_an_unknown_key_is_401_invalid_api_key():
    error = refused(access("key"), [(b"x-api-key", b"rk_nobody-knows-this-one")])
    assert (error.status, error.type) == (401, "invalid_api_key")


def test_a_value_without_the_key_prefix_is_invalid_without_a_lookup():
    assert refused(access("key"), [(b"x-api-key", b"password123")]).type == "invalid_api_key"


def test_a_rotated_key_works_until_its_overlap_ends():
    admit(access("key", clock=NOW + 59), [(b"x-api-key", OLD_KEY)])
    assert refused(access("key", clock=NOW + 60), [(b"x-api-key", OLD_KEY)]).type == "invalid_api_key"


def test_a_disabled_consumers_key_is_403_consumer_disabled():
    error = refused(access("key"), [(b"x-api-key", b"rk_frozen-key")])
    assert (error.status, error.type) == (403, "consumer_disabled")


# --- jwt and either modes ----------------------------------------------------------------------------------------

def test_a_jwt_whose_subject_is_mapped_resolves_to_the_consumer():
    principal, _ = admit(access("jwt"), [(b"authorization", bearer(token("alice")))])
    assert principal.subject == "alice"
    assert (b"x-consumer-name", b"billing") in principal.headers


def test_a_jwt_whose_subject_is_nobodys_is_admitted_without_a_consumer():
    principal, _ = admit(access("jwt"), [(b"authorization", bearer(token("stranger")))])
    assert not any(name == b"x-consumer-name" for name, _ in principal.headers)


def test_auth_required_on_a_route_whose_auth_is_none_still_means_jwt():
    assert refused(access("none", auth_required=True), []).headers == [(b"www-authenticate", b"Bearer")]


def test_a_jwt_of_a_disabled_consumer_is_403():
    assert refused(access("jwt"), [(b"authorization", bearer(token("ghost")))]).type == "consumer_disabled"


def test_an_either_route_takes_a_key_or_a_token():
    either = access("either")
    assert admit(either, [(b"x-api-key", KEY)])[0].subject is None
    assert admit(either, [(b"authorization", bearer(token()))])[0].subject == "alice"


def test_an_either_route_without_credentials_offers_both_challenges():
    error = refused(access("either"), [])
    assert error.type == "unauthorized"
    assert dict(error.headers)[b"www-authenticate"] == b'Bearer, ApiKey header="X-API-Key"'


def test_on_an_either_route_a_bad_key_is_refused_even_with_a_good_token():
    headers = [(b"x-api-key", b"rk_wrong"), (b"authorization", bearer(token()))]
    assert refused(access("either"), headers).type == "invalid_api_key"


def test_an_either_route_without_jwt_settings_is_misconfigured():
    table = RouteTable([route("r", "/r", 9000, auth="either")], version=1, settings={DIRECTORY_SETTING: DIRECTORY})
    compiled = AccessControl().compile(table.routes[0], table.settings)
    assert compiled is not None
    assert refused(compiled, [(b"x-api-key", KEY)]).type == "route_misconfigured"


def test_a_route_with_an_auth_mode_nobody_knows_is_misconfigured_not_open():
    table = RouteTable([route("r", "/r", 9000, auth="basic")], version=1, settings={DIRECTORY_SETTING: DIRECTORY})
    compiled = AccessControl().compile(table.routes[0], table.settings)
    assert compiled is not None
    assert refused(compiled, [(b"x-api-key", KEY)]).type == "route_misconfigured"


# --- What goes upstream ------------------------------------------------------------------------------------------

def test_upstream_gets_the_consumer_and_neither_the_clients_copy_nor_the_key():
    key_route = access("key")
    principal, _ = admit(key_route, [(b"x-api-key", KEY)])
    sent = [(b"x-consumer-name", b"admin"), (b"x-api-key", KEY), (b"authorization", b"Bearer " + KEY),
            (b"accept", b"*/*")]
    assert key_route.upstream_headers(sent, principal) == [(b"accept", b"*/*"), (b"x-consumer-name", b"billing")]


def test_a_jwt_routes_upstream_keeps_the_token_and_loses_a_forged_consumer():
    jwt_route = access("jwt")
    principal, _ = admit(jwt_route, [(b"authorization", bearer(token("stranger")))])
    sent = [(b"authorization", bearer(token("stranger"))), (b"x-consumer-name", b"billing")]
    assert jwt_route.upstream_headers(sent, principal) == [(b"authorization", bearer(token("stranger")))]


def test_a_websocket_route_sends_the_consumer_upstream_like_an_http_one():
    principal, _ = admit(access("jwt", protocol="websocket"), [(b"authorization", bearer(token()))])
    assert principal.headers == ((b"x-consumer-name", b"billing"),)


def test_an_ftp_route_resolves_the_consumer_without_sending_the_header():
    principal, _ = admit(access("jwt", protocol="ftp"), [(b"authorization", bearer(token()))])
    assert principal.headers == ()


# --- Rate limits -------------------------------------------------------------------------------------------------

def test_a_key_and_a_token_of_one_consumer_spend_one_consumer_limit():
    either = access("either", policies={"rate_limit": {"limit": 2, "window_s": 60, "scope": ["consumer"]}})
    assert admit(either, [(b"x-api-key", KEY)])[1].remaining == 1
    assert admit(either, [(b"authorization", bearer(token("alice")))])[1].remaining == 0
    assert refused(either, [(b"x-api-key", KEY)]).status == 429


def test_per_user_counts_the_consumer_when_the_subject_has_one():
    jwt_route = access("either", policies={"rate_limit": {"limit": 1, "window_s": 60, "strategy": "PerUser"}})
    admit(jwt_route, [(b"x-api-key", KEY)])
    assert refused(jwt_route, [(b"authorization", bearer(token("alice")))]).status == 429
    admit(jwt_route, [(b"authorization", bearer(token("stranger")))])  # no consumer: its own subject's counter



# --- Without waiting ---------------------------------------------------------------------------------------------

def test_a_token_is_verified_once_then_known_without_waiting_as_the_same_consumer():
    route_access = access("jwt")
    headers = [(b"authorization", bearer(token()))]
    assert route_access.identify_now(headers) is None  # never verified: it must be awaited
    verified = asyncio.run(route_access.identify(headers))
    known = route_access.identify_now(headers)
    assert known is not None and known[1] == verified[1] == "billing"
    assert known[0].subject == "alice"


def test_a_key_is_known_without_waiting_and_a_refusal_is_the_same():
    assert access("key").identify_now([(b"x-api-key", KEY)])[1] == "billing"
    with pytest.raises(GatewayError) as caught:
        access("key").identify_now([])
    assert (caught.value.status, caught.value.type) == (401, "unauthorized")


def test_a_local_limit_is_spent_without_waiting_and_refuses_past_its_limit():
    route_access = access("none", policies={"rate_limit": {"limit": 2, "window_s": 60, "store": "local"}})
    spent = [route_access.spend_now([], "10.0.0.1", None, None) for _ in range(2)]
    assert [decision.remaining for decision in spent] == [1, 0]
    with pytest.raises(GatewayError) as caught:
        route_access.spend_now([], "10.0.0.1", None, None)
    assert caught.value.status == 429
