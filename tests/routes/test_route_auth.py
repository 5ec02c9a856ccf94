"""A route's `auth` field: its modes, the protocols that take them, and how it sits with `auth_required` and a
route's own `jwt` block (a contradiction is refused, naming both)."""
from __future__ import annotations

import pytest

from routes import services, snapshot
from routes.services import ConfigError

pytestmark = pytest.mark.django_db

JWT = {"secret": "a-shared-secret-of-at-least-32-bytes!"}


def auth_errors(doc) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        services.prepare_route(doc)
    return refused.value.errors["auth"]


@pytest.mark.parametrize("mode", ["none", "key", "jwt", "either"])
def test_each_mode_is_saved_and_reaches_the_data_plane(route_doc, mode):
    services.save_route(route_doc(auth=mode), actor=None, source="api")
    assert snapshot.build_table().routes[0].spec.auth == mode


def test_a_route_without_auth_takes_none(route_doc):
    assert services.prepare_route(route_doc())["auth"] == "none"


def test_an_unknown_mode_is_refused(route_doc):
    assert auth_errors(route_doc(auth="basic")) == ["Must be one of: none, key, jwt, either."]


@pytest.mark.parametrize("mode", ["key", "either"])
def test_auth_required_contradicting_a_key_mode_is_refused(route_doc, mode):
    assert "auth_required" in auth_errors(route_doc(auth=mode, auth_required=True))[0]


def test_auth_required_with_jwt_is_consistent(route_doc):
    assert services.prepare_route(route_doc(auth="jwt", auth_required=True))["auth"] == "jwt"


def test_auth_required_with_none_keeps_its_old_meaning(route_doc):
    services.save_route(route_doc(auth_required=True), actor=None, source="api")
    assert snapshot.build_table().routes[0].spec.auth_required is True


def test_a_key_route_with_its_own_jwt_block_is_refused(route_doc):
    assert "jwt block" in auth_errors(route_doc(auth="key", jwt=JWT))[0]


def test_an_either_route_may_carry_its_own_jwt_block(route_doc):
    assert services.prepare_route(route_doc(auth="either", jwt=JWT))["jwt"] == JWT


@pytest.mark.parametrize("mode", ["key", "either"])
def test_a_key_mode_on_a_websocket_route_is_saved(route_doc, mode):
    doc = route_doc(protocol="websocket", auth=mode, jwt=JWT if mode == "either" else None,
                    backends=[{"host": "ws://10.0.0.5", "port": 8080}])
    services.save_route(doc, actor=None, source="api")
    assert snapshot.build_table().routes[0].spec.auth == mode


def test_a_key_mode_on_an_ftp_route_is_refused(route_doc):
    doc = route_doc(protocol="ftp", auth="key", backends=[{"host": "ftp://10.0.0.5", "port": 21}])
    assert auth_errors(doc) == [
        'auth "key" is for http, websocket, llm and grpc routes; this route\'s protocol is ftp.']


def test_jwt_on_an_ftp_route_is_refused(route_doc):
    doc = route_doc(protocol="ftp", auth="jwt", backends=[{"host": "ftp://10.0.0.5", "port": 21}])
    assert "http, websocket, llm and grpc" in auth_errors(doc)[0]
