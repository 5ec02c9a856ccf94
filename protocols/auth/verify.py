"""JwtPolicy: one route's (or the gateway's) compiled JWT rules, and the request-time check that applies them."""
from __future__ import annotations

import base64
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from jwt import PyJWS
from jwt.exceptions import (
    InvalidAlgorithmError,
    InvalidKeyError,
    InvalidSignatureError,
    PyJWTError,
)

from protocols.auth.cache import TokenCache
from protocols.auth.challenges import AuthFailure, KeysUnavailable
from protocols.auth.claims import (
    ClaimError,
    ClaimRules,
    check_claims,
    forwarded_headers,
    missing_scopes,
    roles_of,
    scopes_of,
)
from protocols.auth.config import compile_block
from protocols.auth.jwks import JwksKeySet
from protocols.auth.keys import HMAC_ALGORITHMS, VerifyKey, matching_keys

Headers = list[tuple[bytes, bytes]]

# RFC 6750 2.1 b64token; a compact JWS only uses the base64url alphabet and dots, which this admits.
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")
_B64URL = re.compile(rb"[A-Za-z0-9_-]+")
MAX_TOKEN_BYTES = 16 * 1024
# A token is tried against at most this many keys of its algorithm (each try is a signature check, so an
# unbounded number would let one request without a kid cost many).
MAX_KEY_TRIES = 4


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for.

    `headers` are the upstream fields built from `forward_claims` (lower-case names), ready to append after
    `JwtPolicy.strip_forwarded` removed the client's own copies. `claims` is read-only.
    """

    subject: str | None
    scopes: frozenset[str]
    roles: frozenset[str]
    claims: Mapping[str, Any]
    headers: tuple[tuple[bytes, bytes], ...]
    expires_at: float | None


class JwtPolicy:
    """A compiled `jwt` block. Build it once per route table (`from_config`), share it across requests.

    `authenticate` is the only request-time call; see the package docstring for the wiring.
    """

    def __init__(self, block: dict[str, Any], *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        compiled = compile_block(block)
        self.algorithms = compiled.algorithms
        self.rules: ClaimRules = compiled.rules
        self.realm = compiled.realm
        self.static_keys = compiled.static_keys
        self.forward = compiled.forward
        self.forwarded_names = frozenset(header for _, header in compiled.forward)
        self.cache_ttl_s = compiled.cache_ttl_s
        self.cache: TokenCache[Principal] = TokenCache(compiled.cache_size)
        self.clock = clock
        self.jwks = JwksKeySet(
            compiled.jwks_url, compiled.algorithms, compiled.jwks_cache_s, compiled.jwks_min_refresh_s,
            compiled.jwks_timeout_s, clock=monotonic,
        ) if compiled.jwks_url else None
        self._jwks_version = 0
        # A PyJWS that only knows the configured algorithms: "none" and anything else cannot even be looked up.
        self._jws = PyJWS(algorithms=sorted(compiled.algorithms), options={"enforce_minimum_key_length": True})

    @classmethod
    def from_config(cls, block: dict[str, Any], *, clock: Callable[[], float] = time.time,
                    monotonic: Callable[[], float] = time.monotonic) -> JwtPolicy:
        """Compile a `jwt` block; raises protocols.block_errors.BlockError naming the key that is wrong."""
        return cls(block, clock=clock, monotonic=monotonic)

    def strip_forwarded(self, headers: Iterable[tuple[bytes, bytes]]) -> Headers:
        """The request's headers without the ones this policy sets from claims (a client must not forge them)."""
        names = self.forwarded_names
        return [item for item in headers if item[0].lower() not in names]

    async def prefetch(self) -> bool:
        """Fetch the JWKS now (start-up warm-up); True when keys are available. No-op without jwks_url."""
        return True if self.jwks is None else await self.jwks.refresh()

    async def authenticate(self, authorization: bytes | None) -> Principal:
        """The principal of a request's Authorization field value, or AuthFailure (401/403) / KeysUnavailable.

        The cache is keyed by the whole field value, so a token seen before costs one look-up: the value was
        parsed and its token verified when it was cached."""
        now = self.clock()
        if self.jwks is not None and self.jwks.version != self._jwks_version:
            self.cache.clear()  # the key set changed: tokens of a withdrawn key must be checked again
            self._jwks_version = self.jwks.version
        if authorization:
            principal = self.cache.get(authorization, now)
            if principal is not None:
                return principal
        token = self._bearer(authorization)
        assert authorization is not None  # _bearer refuses a missing field
        principal = await self._verify(token, now)
        until = now + self.cache_ttl_s
        if principal.expires_at is not None:
            until = min(until, principal.expires_at)
        self.cache.put(authorization, principal, until)
        return principal

    def known(self, authorization: bytes | None) -> Principal | None:
        """The principal of an Authorization value verified before and still cached, else None (then call
        `authenticate`): the common case without a coroutine of its own."""
        if not authorization or (self.jwks is not None and self.jwks.version != self._jwks_version):
            return None
        return self.cache.get(authorization, self.clock())

    def _bearer(self, authorization: bytes | None) -> bytes:
        if authorization is None:
            raise AuthFailure.missing(self.realm)
        scheme, _, rest = authorization.strip().partition(b" ")
        if not scheme:
            raise AuthFailure.invalid_request("The Authorization field is empty or sent twice.", self.realm)
        if scheme.lower() != b"bearer":
            # RFC 6750 3.1: another scheme is "no bearer token", answered without an error code.
            raise AuthFailure.missing(self.realm)
        token = rest.strip(b" ")
        if not token:
            raise AuthFailure.invalid_request("The Authorization field has no token after Bearer.", self.realm)
        if len(token) > MAX_TOKEN_BYTES or not _B64TOKEN.fullmatch(token):
            raise AuthFailure.invalid_request("The bearer token is malformed.", self.realm)
        return token

    async def _verify(self, token: bytes, now: float) -> Principal:
        realm = self.realm
        header = _unverified_header(token)
        if header is None:
            raise AuthFailure.invalid_token("The token is not a well-formed JWT.", realm)
        if "crit" in header or "b64" in header:
            raise AuthFailure.invalid_token("The token uses a JWS extension this gateway does not accept.", realm)
        algorithm = header.get("alg")
        if not isinstance(algorithm, str) or algorithm not in self.algorithms:
            raise AuthFailure.invalid_token("The token's signing algorithm is not accepted here.", realm)
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthFailure.invalid_token("The token's key id (kid) must be a string.", realm)
        keys = await self._keys(algorithm, kid)
        payload = self._check_signature(token, keys[:MAX_KEY_TRIES])
        try:
            claims = json.loads(payload)
        except ValueError:
            raise AuthFailure.invalid_token("The token's payload is not JSON.", realm) from None
        if not isinstance(claims, dict):
            raise AuthFailure.invalid_token("The token's payload is not a JSON object.", realm)
        try:
            check_claims(claims, self.rules, now)
        except ClaimError as exc:
            raise AuthFailure.invalid_token(str(exc), realm) from None
        scopes = scopes_of(claims, self.rules)
        roles = roles_of(claims, self.rules)
        description, scope = missing_scopes(scopes, roles, self.rules)
        if description:
            raise AuthFailure.insufficient_scope(description, scope, realm)
        exp = claims.get("exp")
        return Principal(
            subject=claims.get("sub"), scopes=scopes, roles=roles, claims=MappingProxyType(claims),
            headers=tuple(forwarded_headers(claims, self.forward)),
            expires_at=float(exp) if exp is not None else None,
        )

    async def _keys(self, algorithm: str, kid: str | None) -> list[VerifyKey]:
        keys = matching_keys(self.static_keys, algorithm, kid)
        if self.jwks is not None and algorithm not in HMAC_ALGORITHMS:
            keys = keys + await self.jwks.lookup(algorithm, kid)
            if not keys and not self.jwks.loaded:
                raise KeysUnavailable(math.ceil(self.jwks.retry_in()))
        if not keys:
            raise AuthFailure.invalid_token("No configured key matches the token's key id (kid).", self.realm)
        return keys

    def _check_signature(self, token: bytes, keys: list[VerifyKey]) -> bytes:
        for key in keys:
            try:
                decoded = self._jws.decode_complete(token, key=key.key, algorithms=[key.algorithm])
            except InvalidSignatureError:
                continue
            except (InvalidAlgorithmError, InvalidKeyError):
                raise AuthFailure.invalid_token("The token's signing algorithm is not accepted here.",
                                                self.realm) from None
            except PyJWTError:
                raise AuthFailure.invalid_token("The token is not a well-formed JWT.", self.realm) from None
            payload: bytes = decoded["payload"]
            return payload
        raise AuthFailure.invalid_token("The token's signature is not valid.", self.realm)


def _unverified_header(token: bytes) -> dict[str, Any] | None:
    """The JOSE header, read only to choose the key; PyJWS checks the whole token again, strictly, when it
    verifies the signature. (PyJWS's own header reader checks the alphabet byte by byte, in Python: calling it
    here too cost ~35 µs per token.)"""
    segment, dot, rest = token.partition(b".")
    if not dot or rest.count(b".") != 1 or not _B64URL.fullmatch(segment):
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + b"=" * (-len(segment) % 4)))
    except ValueError:  # binascii.Error, UnicodeDecodeError and JSONDecodeError are ValueErrors
        return None
    return header if isinstance(header, dict) else None


def authorization_value(headers: Iterable[tuple[bytes, bytes]]) -> bytes | None:
    """The Authorization field of ASGI headers; b"" (malformed) when it is sent more than once."""
    found: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if found is not None:
                return b""
            found = value
    return found
