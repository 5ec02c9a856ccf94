"""A route's `ftp` policy block (`RouteSpec.policies["ftp"]`) and the credentials a request logs in with.

    username                "anonymous"   the account the gateway logs in with
    password                "anonymous@"  (write-only in the control plane: never shown by the API or exports)
    passthrough_basic_auth  false         log in with the client's HTTP Basic credentials instead; then they are
                                          required (401 with a Basic challenge when missing or refused)
    root                    ""            the directory clients see as "/"; empty: the route's internal path,
                                          with its parameters filled in, or "/"

Invalid values fall back to their defaults (logged), as for the other policy blocks.
"""
from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from protocols.ftp.paths import PathRejected, check_text
from protocols.ftp.replies import FtpAuthRequired, FtpBadRequest

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FtpSettings:
    """One route's FTP settings as typed values."""

    username: str = "anonymous"
    password: str = "anonymous@"
    passthrough: bool = False
    root: str = ""


DEFAULT_SETTINGS = FtpSettings()


def ftp_settings(route_name: str, policies: Mapping[str, Any] | None) -> FtpSettings:
    block = (policies or {}).get("ftp")
    if not block:
        return DEFAULT_SETTINGS
    if not isinstance(block, Mapping):
        log.warning("route %r: the ftp policy is not an object; using the defaults", route_name)
        return DEFAULT_SETTINGS
    values: dict[str, Any] = {}
    for key, name in (("username", "username"), ("password", "password"), ("root", "root")):
        raw = block.get(key)
        if raw is None:
            continue
        if isinstance(raw, str):
            values[name] = raw
        else:
            log.warning("route %r: ftp.%s is not a string; using the default", route_name, key)
    raw = block.get("passthrough_basic_auth")
    if isinstance(raw, bool):
        values["passthrough"] = raw
    elif raw is not None:
        log.warning("route %r: ftp.passthrough_basic_auth is not a boolean; using false", route_name)
    return FtpSettings(**values)


def basic_credentials(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """The user and password of an `Authorization: Basic` field, None when there is none or it is malformed."""
    for name, value in headers:
        if name != b"authorization":
            continue
        scheme, _, token = value.strip().partition(b" ")
        if scheme.lower() != b"basic":
            return None
        try:
            decoded = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            text = decoded.decode("latin-1")
        user, colon, password = text.partition(":")
        return (user, password) if colon else None
    return None


def login_credentials(settings: FtpSettings, route_name: str, headers: Iterable[tuple[bytes, bytes]],
                      offered: tuple[str, str] | None = None) -> tuple[str, str]:
    """The (user, password) to log in with. With passthrough the client's Basic credentials are used (or, for
    the earlier gateway's request shapes, the `offered` username and password); otherwise the route's own."""
    if settings.passthrough:
        credentials = basic_credentials(headers) or offered
        if credentials is None or not credentials[0]:
            raise FtpAuthRequired(route_name, "This FTP route logs in with your credentials: send HTTP Basic auth.")
    else:
        credentials = (settings.username, settings.password)
    try:
        check_text(credentials[0], "user name")
        check_text(credentials[1], "password")
    except PathRejected as exc:
        raise FtpBadRequest(str(exc)) from None
    return credentials
