"""Consumers on the data plane: who an API key or a JWT subject is, and a route's `auth` mode applied per request.

The control plane ships a `ConsumerDirectory` with every route table, under `RouteTable.settings["consumers"]`
(`DIRECTORY_SETTING`): API-key digests and JWT subjects mapped to consumers. Nothing here reads the database; a
request costs at most one SHA-256 of the presented key and dict lookups.

A route's `auth` mode (`AUTH_MODES`): "none", "key" (an API key), "jwt" (a bearer JWT, what `auth_required` has
always meant) or "either". An API key is read from `X-API-Key`, or from `Authorization: Bearer rk_...` (a JWT
never starts with `rk_`, so the two cannot be confused), and at a WebSocket handshake from the `api_key` query
parameter when neither field has one (protocols.websocket.handshake); when both a key and a JWT are sent to an
"either" route, the key decides. Answers, GatewayErrors like the JWT layer's:
- 401 `unauthorized`: no credential at all (`WWW-Authenticate: ApiKey`, plus `Bearer` on "either" routes);
- 401 `invalid_api_key`: a key that is malformed, unknown, revoked or expired (one message for all, on purpose);
- 403 `consumer_disabled`: a valid key or token of a consumer that is disabled;
- the JWT layer's own 401/403/503 for a bearer token.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

from protocols.auth.challenges import AuthFailure
from protocols.auth.verify import JwtPolicy, Principal, authorization_value
from protocols.errors import GatewayError

Headers = list[tuple[bytes, bytes]]

AUTH_MODES = ("none", "key", "jwt", "either")
KEY_MODES = frozenset({"key", "either"})
API_KEY_PREFIX = "rk_"
API_KEY_HEADER = b"x-api-key"
CONSUMER_HEADER = b"x-consumer-name"
DIRECTORY_SETTING = "consumers"  # RouteTable.settings key (GatewaySettings has no block of that name)
# Longer values are refused before hashing: a key Rusta issues is 35 characters.
MAX_KEY_BYTES = 128
_KEY_PREFIX = API_KEY_PREFIX.encode()
_BEARER_KEY = b"bearer " + _KEY_PREFIX
_NO_CLAIMS: Mapping[str, Any] = MappingProxyType({})
_KEY_CHALLENGE = b'ApiKey header="X-API-Key"'


def key_digest(key: bytes) -> bytes:
    """The SHA-256 of a key: what the control plane stores (as hex) and the directory is keyed by."""
    return hashlib.sha256(key).digest()


@dataclass(frozen=True, slots=True)
class ConsumerIdentity:
    """A consumer as requests see it: its name (sent upstream as `X-Consumer-Name`) and whether it may call."""

    name: str
    enabled: bool = True

    @property
    def header(self) -> tuple[bytes, bytes]:
        return CONSUMER_HEADER, self.name.encode()


@dataclass(frozen=True, slots=True)
class KeyGrant:
    """One live API key: whose it is and until when (Unix seconds; None: until revoked)."""

    consumer: ConsumerIdentity
    expires_at: float | None = None


class ConsumerDirectory:
    """Every live API key (by SHA-256 digest) and every mapped JWT subject, for one route table. Read-only."""

    __slots__ = ("keys", "subjects")

    def __init__(self, keys: Mapping[bytes, KeyGrant] | None = None,
                 subjects: Mapping[str, ConsumerIdentity] | None = None) -> None:
        self.keys: Mapping[bytes, KeyGrant] = MappingProxyType(dict(keys or {}))
        self.subjects: Mapping[str, ConsumerIdentity] = MappingProxyType(dict(subjects or {}))

    def __len__(self) -> int:
        return len(self.keys) + len(self.subjects)

    def grant(self, key: bytes, now: float) -> KeyGrant:
        """The grant of a presented key, or InvalidApiKey (malformed, unknown, revoked or expired)."""
        if len(key) > MAX_KEY_BYTES or not key.startswith(_KEY_PREFIX):
            raise InvalidApiKey()
        found = self.keys.get(key_digest(key))
        if found is None or (found.expires_at is not None and now >= found.expires_at):
            raise InvalidApiKey()
        return found


EMPTY_DIRECTORY = ConsumerDirectory()


def directory_of(settings: Mapping[str, Any]) -> ConsumerDirectory:
    """The directory a table's settings carry; the empty one when the table was built without consumers."""
    found = settings.get(DIRECTORY_SETTING)
    return found if isinstance(found, ConsumerDirectory) else EMPTY_DIRECTORY


class MissingCredentials(GatewayError):
    """401 `unauthorized`: the route needs an API key (or, on an "either" route, a key or a bearer token)."""

    def __init__(self, mode: str, realm: str = "") -> None:
        if mode == "either":
            message = "This route requires an API key (X-API-Key) or a bearer token."
            bearer = AuthFailure.missing(realm).www_authenticate
            challenge = bearer + b", " + _KEY_CHALLENGE
        else:
            message = "This route requires an API key (X-API-Key)."
            challenge = _KEY_CHALLENGE
        super().__init__(401, "unauthorized", message, [(b"www-authenticate", challenge)])


class InvalidApiKey(GatewayError):
    """401 `invalid_api_key`: the key is malformed, unknown, revoked or expired (which one is not said)."""

    def __init__(self) -> None:
        super().__init__(401, "invalid_api_key", "The API key is not valid: unknown, revoked or expired.",
                         [(b"www-authenticate", _KEY_CHALLENGE + b', error="invalid_api_key"')])


class ConsumerDisabled(GatewayError):
    """403 `consumer_disabled`: the credential is valid, but its consumer is disabled."""

    def __init__(self, name: str) -> None:
        super().__init__(403, "consumer_disabled", f"Consumer '{name}' is disabled.")


def presented_key(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bytes | None]:
    """(API key, Authorization value) of ASGI headers: the key from X-API-Key, else from a `Bearer rk_...`
    Authorization field (then the second item is None). A field sent twice reads as b"" (malformed)."""
    key: bytes | None = None
    authorization: bytes | None = None
    for name, value in headers:
        if name == API_KEY_HEADER:
            key = b"" if key is not None else value.strip()
        elif name == b"authorization":
            authorization = b"" if authorization is not None else value
    if key is None and authorization is not None and authorization[:10].lower() == _BEARER_KEY:
        return authorization[7:].strip(), None
    return key, authorization


def is_key_bearer(value: bytes) -> bool:
    """Whether an Authorization value carries an API key rather than a token."""
    return value[:10].lower() == _BEARER_KEY


class RouteCredentials:
    """One route's `auth` mode at request time: which credential it takes, whose it is, what goes upstream.

    `jwt` is the route's JwtPolicy ("jwt" and "either" modes), `directory` the table's consumers, `clock` the
    wall clock keys expire by. With `forward_consumer` (http and websocket routes) the consumer's name goes
    upstream as `X-Consumer-Name`, in the principal's headers; `stripped` are the client's fields removed before
    that.
    """

    __slots__ = ("mode", "jwt", "directory", "clock", "forward_consumer", "stripped", "strip_key_bearer")

    def __init__(self, mode: str, jwt: JwtPolicy | None, directory: ConsumerDirectory, clock: Callable[[], float],
                 forward_consumer: bool) -> None:
        self.mode = mode
        self.jwt = jwt
        self.directory = directory
        self.clock = clock
        self.forward_consumer = forward_consumer
        stripped = set(jwt.forwarded_names) if jwt is not None else set()
        if forward_consumer:
            stripped.add(CONSUMER_HEADER)
        self.strip_key_bearer = mode in KEY_MODES
        if self.strip_key_bearer:
            stripped.add(API_KEY_HEADER)  # the backend has no use for the gateway's credential
        self.stripped = frozenset(stripped)

    async def authenticate(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[Principal, str | None]:
        """The request's principal and its consumer's name (None: a token whose subject is no consumer's);
        raises the GatewayError that answers instead."""
        known = self.known(headers)
        if known is not None:
            return known
        jwt = self.jwt
        assert jwt is not None  # only a token not verified before is left for here
        return self._token_principal(await jwt.authenticate(authorization_value(headers)))

    def known(self, headers: Iterable[tuple[bytes, bytes]]) -> tuple[Principal, str | None] | None:
        """`authenticate` without waiting, whenever nothing needs waiting for: an API key, or a token verified
        before and still cached (nearly every request); None when the token must be verified (call
        `authenticate`). Raises the same GatewayErrors."""
        mode = self.mode
        if mode in KEY_MODES:
            key, authorization = presented_key(headers)
            if key is not None:
                return self._key_principal(self.directory.grant(key, self.clock()).consumer)
            if mode == "key" or authorization is None or self.jwt is None:
                raise MissingCredentials(mode, self.jwt.realm if self.jwt is not None else "")
        else:
            authorization = authorization_value(headers)
        jwt = self.jwt
        assert jwt is not None  # "jwt" and "either" routes are compiled with their policy
        principal = jwt.known(authorization)
        return None if principal is None else self._token_principal(principal)

    def _token_principal(self, principal: Principal) -> tuple[Principal, str | None]:
        consumer = self.directory.subjects.get(principal.subject) if principal.subject is not None else None
        if consumer is None:
            return principal, None
        if not consumer.enabled:
            raise ConsumerDisabled(consumer.name)
        if self.forward_consumer:
            principal = replace(principal, headers=(*principal.headers, consumer.header))
        return principal, consumer.name

    def _key_principal(self, consumer: ConsumerIdentity) -> tuple[Principal, str]:
        if not consumer.enabled:
            raise ConsumerDisabled(consumer.name)
        headers = (consumer.header,) if self.forward_consumer else ()
        return Principal(None, frozenset(), frozenset(), _NO_CLAIMS, headers, None), consumer.name

    def upstream_headers(self, headers: Headers, principal: Principal) -> Headers:
        """`headers` without the client's copies of what the gateway sets (claim headers, X-Consumer-Name) and
        without the API key, plus the principal's own."""
        stripped = self.stripped
        if not stripped:
            return headers
        # ASGI field names are lower-case (the listeners make them so), and so are the stripped names.
        if not self.strip_key_bearer:
            kept = [item for item in headers if item[0] not in stripped]
        else:
            kept = [item for item in headers if (name := item[0]) not in stripped
                    and not (name == b"authorization" and is_key_bearer(item[1]))]
        kept += principal.headers
        return kept

