"""The `ftp` policy block and the credentials a request logs in with."""
from __future__ import annotations

import base64

import pytest

from protocols.errors import GatewayError
from protocols.ftp.config import FtpSettings, basic_credentials, ftp_settings, login_credentials


def authorization(value: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", value.encode())]


def test_a_route_without_the_block_logs_in_anonymously() -> None:
    assert login_credentials(ftp_settings("r", {}), "r", []) == ("anonymous", "anonymous@")


def test_it_reads_the_block() -> None:
    settings = ftp_settings("r", {"ftp": {"username": "u", "password": "p", "root": "/srv",
                                          "passthrough_basic_auth": True}})
    assert settings == FtpSettings("u", "p", True, "/srv")


def test_values_of_the_wrong_type_fall_back_to_the_defaults() -> None:
    assert ftp_settings("r", {"ftp": {"username": 5, "passthrough_basic_auth": "yes"}}) == FtpSettings()


def test_basic_credentials_are_decoded() -> None:
    token = base64.b64encode("bob:pa:ss wörd".encode()).decode()
    assert basic_credentials(authorization(f"Basic {token}")) == ("bob", "pa:ss wörd")


@pytest.mark.parametrize("value", ["Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()])
def test_other_or_malformed_authorization_gives_no_credentials(value: str) -> None:
    assert basic_credentials(authorization(value)) is None


def test_passthrough_requires_credentials() -> None:
    with pytest.raises(GatewayError) as caught:
        login_credentials(FtpSettings(passthrough=True), "r", [])
    assert caught.value.status == 401


def test_passthrough_ignores_the_routes_own_account() -> None:
    token = base64.b64encode(b"bob:pw").decode()
    settings = FtpSettings(username="route", password="secret", passthrough=True)
    assert login_credentials(settings, "r", authorization(f"Basic {token}")) == ("bob", "pw")


def test_configured_credentials_with_cr_lf_are_refused() -> None:
    with pytest.raises(GatewayError) as caught:
        login_credentials(FtpSettings(username="a\r\nDELE x"), "r", [])
    assert caught.value.status == 400
