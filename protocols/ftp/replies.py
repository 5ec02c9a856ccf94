"""The FTP gateway's documented errors, and the one place where FTP replies and socket failures become them.

    400 ftp_bad_request          a missing or unusable parameter, a path that leaves the root, CR/LF/NUL
    401 ftp_auth_required        passthrough route: no Basic credentials, or the server refused them
    403 ftp_forbidden            the server refused the operation to this account (530/532 after login)
    404 ftp_not_found            no such file or directory (550/450 on a read, 501 on MLSD)
    404 ftp_unknown_operation    the path under the route names no operation
    405 method_not_allowed       the operation or the route does not take this method
    409 ftp_conflict             the server refused a write (550/553 on upload, mkdir or rename target)
    413 ftp_too_large            the earlier gateway's base64 JSON forms are limited in size
    502 ftp_login_failed         the route's own credentials were refused: the route is misconfigured
    502 ftp_upstream_error       any other refusal or an unexpected reply; the server's code and text are named
    502 ftp_protocol_error       the server broke the protocol (garbage, a reply line too long, closed early)
    502 ftp_data_address_refused the server offered a data connection to an address other than its own
    507 ftp_insufficient_storage 452/552
    and the HTTP proxy's 502 upstream_connect_refused, 502 upstream_name_not_resolved, 504 upstream_connect_timeout,
    504 upstream_timeout and 502 upstream_reset for the control and data connections.
"""
from __future__ import annotations

import socket
import ssl

from protocols.errors import (
    GatewayError,
    UpstreamConnectTimeout,
    UpstreamError,
    UpstreamNameNotResolved,
    UpstreamRefused,
    UpstreamReset,
    UpstreamTimeout,
)

_MAX_SERVER_TEXT = 200


def _server_text(text: str) -> str:
    text = text.strip()
    return text if len(text) <= _MAX_SERVER_TEXT else text[:_MAX_SERVER_TEXT] + "..."


class FtpBadRequest(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(400, "ftp_bad_request", message)


class FtpAuthRequired(GatewayError):
    def __init__(self, route_name: str, message: str) -> None:
        realm = route_name.replace("\\", "").replace('"', "")
        super().__init__(401, "ftp_auth_required", message,
                         [(b"www-authenticate", f'Basic realm="{realm}", charset="UTF-8"'.encode())])


class FtpForbidden(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(403, "ftp_forbidden", message)


class FtpNotFound(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(404, "ftp_not_found", message)


class FtpUnknownOperation(GatewayError):
    def __init__(self, operation: str) -> None:
        super().__init__(404, "ftp_unknown_operation",
                         f"'{operation}' is not an FTP gateway operation; use list, download, upload, delete, "
                         "mkdir or rename.")


class FtpConflict(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(409, "ftp_conflict", message)


class FtpTooLarge(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(413, "ftp_too_large", message)


class FtpInsufficientStorage(GatewayError):
    def __init__(self, message: str) -> None:
        super().__init__(507, "ftp_insufficient_storage", message)


class FtpLoginFailed(UpstreamError):
    def __init__(self, backend: str, code: int, text: str) -> None:
        super().__init__(502, "ftp_login_failed",
                         f"FTP login failed on backend {backend} with the route's credentials: {code} "
                         f"{_server_text(text)}")


class FtpUpstreamError(UpstreamError):
    def __init__(self, backend: str, command: str, code: int, text: str) -> None:
        super().__init__(502, "ftp_upstream_error",
                         f"FTP backend {backend} answered {command} with {code} {_server_text(text)}")


class FtpProtocolFailure(UpstreamError):
    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(502, "ftp_protocol_error", f"FTP backend {backend} broke the protocol: {reason}.")


class FtpDataAddressRefused(UpstreamError):
    def __init__(self, backend: str, offered: str) -> None:
        super().__init__(502, "ftp_data_address_refused",
                         f"FTP backend {backend} offered a data connection to {offered}, which is not its own "
                         "address; the gateway only opens data connections to the control connection's peer.")


# The FTP client's own exceptions (protocols/ftp/client.py) carry the facts; these classes are what the client
# of the gateway sees.

class FtpReplyError(Exception):
    """The server answered `command` (its verb only: never a password) with an unexpected reply."""

    def __init__(self, command: str, code: int, text: str) -> None:
        super().__init__(f"{command}: {code} {text}")
        self.command = command
        self.code = code
        self.text = text


class FtpProtocolError(Exception):
    """The server's bytes are not FTP: no reply code, a line over the limit, or the connection ended early."""


class ConnectTimedOut(TimeoutError):
    """A control or data connection was not established within the route's connect timeout."""


class DataAddressRefused(Exception):
    """A passive reply pointed at an address other than the control connection's peer."""

    def __init__(self, offered: str) -> None:
        super().__init__(offered)
        self.offered = offered


READ_OPERATIONS = frozenset({"list", "download", "delete", "rename_from"})


def reply_error(exc: FtpReplyError, backend: str, operation: str, client_path: str) -> GatewayError:
    """The gateway error for a refused command of `operation` on `client_path` (the client's view of it)."""
    code, text = exc.code, _server_text(exc.text)
    # MLSD answers 501 for a path that is not a directory (RFC 3659 7.2), missing ones included.
    if (code in (550, 450) and operation in READ_OPERATIONS) or (code == 501 and operation == "list"):
        return FtpNotFound(f"{client_path}: no such file or directory on the FTP server ({code} {text}).")
    if code in (550, 553, 450):
        return FtpConflict(f"{client_path}: the FTP server refused it ({code} {text}).")
    if code in (452, 552):
        return FtpInsufficientStorage(f"{client_path}: the FTP server is out of space ({code} {text}).")
    if code in (530, 532):
        return FtpForbidden(f"{client_path}: the FTP server does not allow this account to do that ({code} {text}).")
    return FtpUpstreamError(backend, exc.command, code, text)


def connection_error(exc: BaseException, backend: str, connect_timeout: float, read_timeout: float,
                     connecting: bool) -> GatewayError | None:
    """The gateway error for a socket-level failure talking to the server, None for anything else."""
    if isinstance(exc, DataAddressRefused):
        return FtpDataAddressRefused(backend, exc.offered)
    if isinstance(exc, FtpProtocolError):
        return FtpProtocolFailure(backend, str(exc))
    if isinstance(exc, ConnectTimedOut):
        return UpstreamConnectTimeout(backend, connect_timeout)
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout(backend, read_timeout, "an FTP reply or data")
    if isinstance(exc, ssl.SSLError):
        return UpstreamRefused(backend, f"TLS handshake failed ({exc.reason or exc})")
    if isinstance(exc, ConnectionRefusedError):
        return UpstreamRefused(backend)
    if isinstance(exc, socket.gaierror):
        return UpstreamNameNotResolved(backend, exc.strerror or str(exc) or "name not known")
    if isinstance(exc, OSError):
        if connecting:
            return UpstreamRefused(backend, exc.strerror or str(exc) or type(exc).__name__)
        return UpstreamReset(backend, "in the middle of an FTP exchange")
    return None
