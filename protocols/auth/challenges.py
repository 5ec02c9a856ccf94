"""The JWT layer's answers at request time: 401, 403 and 503 (a bad `jwt` block raises
protocols.block_errors.BlockError at table-build time)."""
from __future__ import annotations

from protocols.errors import GatewayError

# RFC 6750 3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E (no '"', no '\').
_DESCRIPTION_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F)) - {'"', "\\"}


class AuthFailure(GatewayError):
    """401 or 403 with an RFC 6750 `WWW-Authenticate: Bearer ...` field and the gateway's JSON error body.

    `error` is "" (no token was sent: no error attribute, as RFC 6750 3.1 asks), "invalid_request" (the
    Authorization field is malformed), "invalid_token" (bad signature, expired, wrong issuer, ...) or
    "insufficient_scope" (403; `scope` names what the route needs).
    """

    def __init__(self, status: int, error: str, description: str, scope: str = "", realm: str = "") -> None:
        self.error = error
        self.description = description
        self.scope = scope
        self.www_authenticate = _challenge(error, description, scope, realm)
        super().__init__(status, error or "unauthorized", description, [(b"www-authenticate", self.www_authenticate)])

    @classmethod
    def missing(cls, realm: str = "") -> AuthFailure:
        return cls(401, "", "This route requires a bearer token.", realm=realm)

    @classmethod
    def invalid_request(cls, description: str, realm: str = "") -> AuthFailure:
        return cls(401, "invalid_request", description, realm=realm)

    @classmethod
    def invalid_token(cls, description: str, realm: str = "") -> AuthFailure:
        return cls(401, "invalid_token", description, realm=realm)

    @classmethod
    def insufficient_scope(cls, description: str, scope: str, realm: str = "") -> AuthFailure:
        return cls(403, "insufficient_scope", description, scope=scope, realm=realm)


class KeysUnavailable(GatewayError):
    """503: the JWKS endpoint has never answered with a usable key set, so no token can be checked yet.

    Not a 401: the client's token may be fine, and a client that reacts to 401 by discarding its token
    would be misled. Once one key set has been fetched it is kept through outages and this is not raised.
    """

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            503, "auth_keys_unavailable", "The token signing keys could not be fetched; try again shortly.",
            [(b"retry-after", str(max(1, retry_after)).encode())],
        )


def _quoted(value: str) -> str:
    return "".join(c if c in _DESCRIPTION_CHARS else "?" for c in value)


def _challenge(error: str, description: str, scope: str, realm: str) -> bytes:
    params = []
    if realm:
        params.append(f'realm="{_quoted(realm)}"')
    if error:
        params.append(f'error="{error}"')
        params.append(f'error_description="{_quoted(description)}"')
    if scope:
        params.append(f'scope="{_quoted(scope)}"')
    return ("Bearer " + ", ".join(params) if params else "Bearer").encode("ascii")
