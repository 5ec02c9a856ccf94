"""Keys and token makers for the JWT tests: PyJWT and joserfc (two independent JOSE implementations), plus
hand-built tokens for the attacks neither library will produce."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import warnings
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc import jwt as jose_jwt
from joserfc.jwk import ECKey, OctKey, OKPKey, RSAKey

SECRET = "a-shared-secret-of-more-than-thirty-two-bytes-for-hs256"
ISSUER = "https://issuer.test"
AUDIENCE = "rusta-api"


@dataclass(frozen=True)
class KeyPair:
    private: Any
    kind: str  # RSA, EC, OKP

    @property
    def public_pem(self) -> str:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    @property
    def private_pem(self) -> bytes:
        return self.private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption())

    def jwk(self, kid: str, alg: str | None = None) -> dict[str, Any]:
        """The public JWK, as joserfc writes it."""
        key = _jose_key(self)
        params: dict[str, Any] = {"kid": kid, "use": "sig"}
        if alg:
            params["alg"] = alg
        return key.as_dict(private=False, **params)


@cache
def rsa_key(n: int = 0) -> KeyPair:
    return KeyPair(rsa.generate_private_key(public_exponent=65537, key_size=2048), "RSA")


@cache
def ec_key(curve: str = "P-256") -> KeyPair:
    curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}
    return KeyPair(ec.generate_private_key(curves[curve]), "EC")


@cache
def ed_key() -> KeyPair:
    return KeyPair(ed25519.Ed25519PrivateKey.generate(), "OKP")


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"sub": "user-42", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def _jose_key(key: KeyPair | str) -> Any:
    if isinstance(key, str):
        return OctKey.import_key(key)
    cls: Any = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}[key.kind]
    return cls.import_key(key.private_pem)


def with_pyjwt(payload: dict[str, Any], key: KeyPair | str, alg: str, kid: str | None = None) -> bytes:
    signing_key = key if isinstance(key, str) else key.private
    headers = {"kid": kid} if kid else None
    return pyjwt.encode(payload, signing_key, algorithm=alg, headers=headers).encode()


def with_joserfc(payload: dict[str, Any], key: KeyPair | str, alg: str, kid: str | None = None) -> bytes:
    header = {"alg": alg, **({"kid": kid} if kid else {})}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # joserfc flags "EdDSA" as superseded by "Ed25519" (RFC 9864)
        return jose_jwt.encode(header, payload, _jose_key(key), algorithms=[alg]).encode()


MAKERS = {"pyjwt": with_pyjwt, "joserfc": with_joserfc}


def b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def forged(header: dict[str, Any], payload: dict[str, Any], hmac_key: bytes | None = None,
           signature: bytes = b"") -> bytes:
    """A token assembled by hand: HMAC-SHA256-signed with `hmac_key` (whatever it is), or with `signature`."""
    signing_input = b64(json.dumps(header).encode()) + b"." + b64(json.dumps(payload).encode())
    if hmac_key is not None:
        signature = hmac.new(hmac_key, signing_input, hashlib.sha256).digest()
    return signing_input + b"." + b64(signature)


def bearer(token: bytes) -> bytes:
    return b"Bearer " + token
