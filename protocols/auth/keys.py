"""Verification keys, each pinned to exactly one algorithm: shared secrets, PEM public keys and JWKS entries."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from jwt import PyJWK
from jwt.exceptions import PyJWKError, PyJWTError

from protocols.block_errors import BlockError

log = logging.getLogger(__name__)

# The algorithms Rusta accepts, by key type ("kty" in JWK terms). "none" is not among them, on purpose.
HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}  # minimum secret bytes (RFC 7518 3.2)
RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1", "ES256K": "secp256k1"}
OKP_ALGORITHMS = frozenset({"EdDSA"})
SUPPORTED = frozenset(HMAC_ALGORITHMS) | RSA_ALGORITHMS | frozenset(EC_CURVES) | OKP_ALGORITHMS
_JWK_CURVES = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}
_MIN_RSA_BITS = 2048
_PEM_MARKERS = (b"-----BEGIN", b"ssh-rsa", b"ssh-ed25519", b"ecdsa-sha2-")


def key_type(algorithm: str) -> str:
    """The JWK key type an algorithm needs: oct, RSA, EC or OKP."""
    if algorithm in HMAC_ALGORITHMS:
        return "oct"
    if algorithm in RSA_ALGORITHMS:
        return "RSA"
    if algorithm in EC_CURVES:
        return "EC"
    return "OKP"


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """One key for one algorithm. `kid` None matches any token `kid`; `key` is what PyJWT's algorithm takes."""

    algorithm: str
    key: Any
    kid: str | None = None


def matching_keys(keys: tuple[VerifyKey, ...], algorithm: str, kid: str | None) -> list[VerifyKey]:
    """The keys a token with this `alg` and `kid` may be checked against: same algorithm, then the key with
    that kid, else the keys that have no kid."""
    same_alg = [key for key in keys if key.algorithm == algorithm]
    if kid is None:
        return same_alg
    exact = [key for key in same_alg if key.kid == kid]
    return exact or [key for key in same_alg if key.kid is None]


def secret_keys(secret: Any, algorithms: list[str]) -> list[VerifyKey]:
    """The shared secret as one key per configured HMAC algorithm, after length and shape checks."""
    if not isinstance(secret, str) or not secret:
        raise BlockError.at("secret", "Must be a non-empty string.")
    raw = secret.encode()
    if raw.lstrip().startswith(_PEM_MARKERS):
        # A public key used as an HMAC secret is exactly the HS/RS confusion attack; refuse to configure it.
        raise BlockError.at("secret", "jwt.secret looks like a PEM or SSH key; configure it as public_key with its "
                                       "algorithm.")
    keys = []
    for algorithm in algorithms:
        if algorithm not in HMAC_ALGORITHMS:
            continue
        if len(raw) < HMAC_ALGORITHMS[algorithm]:
            raise BlockError.at("secret", f"jwt.secret is {len(raw)} bytes; {algorithm} needs at least "
                                          f"{HMAC_ALGORITHMS[algorithm]} (RFC 7518 3.2).")
        keys.append(VerifyKey(algorithm, raw))
    return keys


def pem_key(pem: Any, algorithm: Any, kid: Any = None, where: str = "public_key") -> VerifyKey:
    """A PEM public key (or X.509 certificate) pinned to `algorithm`, checked to be the right kind of key;
    `where` is its path in the `jwt` block (`public_key`, `public_keys[1]`)."""
    if not isinstance(algorithm, str) or algorithm not in SUPPORTED or algorithm in HMAC_ALGORITHMS:
        raise BlockError.at(where, "Algorithm must be one of "
                                   f"{', '.join(sorted(SUPPORTED - set(HMAC_ALGORITHMS)))}; got {algorithm!r}.")
    if not isinstance(pem, str) or "-----BEGIN" not in pem:
        raise BlockError.at(where, "Must be a PEM text (-----BEGIN PUBLIC KEY----- or a certificate).")
    if kid is not None and not isinstance(kid, str):
        raise BlockError.at(where, "Kid must be a string.")
    data = pem.strip().encode()
    if b"PRIVATE KEY-----" in data:
        raise BlockError.at(where, f"jwt.{where} is a private key; the gateway only needs (and should only hold) "
                                   "the public key.")
    public: Any
    try:
        if data.startswith(b"-----BEGIN CERTIFICATE-----"):
            public = x509.load_pem_x509_certificate(data).public_key()
        else:
            public = load_pem_public_key(data)
    except ValueError as exc:
        raise BlockError.at(where, f"jwt.{where} could not be read as a PEM public key: {exc}") from None
    problem = _key_problem(public, algorithm)
    if problem:
        raise BlockError.at(where, problem)
    return VerifyKey(algorithm, public, kid)


def _key_problem(public: Any, algorithm: str) -> str | None:
    """Why `public` cannot verify `algorithm` (the wrong kind of key, too short), or None."""
    family = key_type(algorithm)
    if family == "RSA":
        if not isinstance(public, rsa.RSAPublicKey):
            return f"{algorithm} needs an RSA key, got {_kind(public)}."
        if public.key_size < _MIN_RSA_BITS:
            return f"The RSA key has {public.key_size} bits; at least {_MIN_RSA_BITS} needed."
    elif family == "EC":
        if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != EC_CURVES[algorithm]:
            return f"{algorithm} needs an EC key on {EC_CURVES[algorithm]}, got {_kind(public)}."
    elif not isinstance(public, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)):
        return f"EdDSA needs an Ed25519 or Ed448 key, got {_kind(public)}."
    return None


def _kind(public: Any) -> str:
    if isinstance(public, ec.EllipticCurvePublicKey):
        return f"an EC key on {public.curve.name}"
    return f"a {type(public).__name__.lstrip('_')}"


def jwks_keys(document: Any, algorithms: frozenset[str], max_keys: int = 64) -> list[VerifyKey]:
    """The usable signature keys of a JWKS document, each pinned to one of `algorithms`.

    A JWK's own `alg` pins it; without `alg`, an EC or OKP key's curve decides, and an RSA key is usable with
    each configured RS*/PS* algorithm (one pinned entry per algorithm: the same RSA key under RS256 and
    PS256 cannot be confused, unlike RSA vs HMAC). Symmetric (`oct`) keys are ignored: a shared secret has
    no business being published at a URL, and accepting one would reopen the HS/RS confusion.
    Raises ValueError when the document is not a key set at all.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('the document is not a JWK set (no "keys" list)')
    keys: list[VerifyKey] = []
    for jwk in document["keys"][:max_keys]:
        if not isinstance(jwk, dict):
            continue
        if jwk.get("use", "sig") != "sig" or "verify" not in jwk.get("key_ops", ["verify"]):
            continue
        kid = jwk.get("kid")
        if kid is not None and not isinstance(kid, str):
            continue
        for algorithm in _jwk_algorithms(jwk, algorithms):
            try:
                public = PyJWK(jwk, algorithm=algorithm).key
            except (PyJWKError, PyJWTError, ValueError, TypeError) as exc:
                log.warning("JWKS key %r skipped for %s: %s", kid, algorithm, exc)
                continue
            problem = _key_problem(public, algorithm)
            if problem:
                log.warning("JWKS key %r skipped for %s: %s", kid, algorithm, problem)
                continue
            keys.append(VerifyKey(algorithm, public, kid))
    return keys


def _jwk_algorithms(jwk: dict[str, Any], algorithms: frozenset[str]) -> list[str]:
    kty = jwk.get("kty")
    if kty == "oct" or kty not in ("RSA", "EC", "OKP"):
        return []
    declared = jwk.get("alg")
    if declared is not None:
        return [declared] if declared in algorithms and key_type(declared) == kty else []
    if kty == "RSA":
        return sorted(a for a in algorithms if a in RSA_ALGORITHMS)
    if kty == "EC":
        inferred = _JWK_CURVES.get(jwk.get("crv", ""))
        return [inferred] if inferred in algorithms else []
    return ["EdDSA"] if "EdDSA" in algorithms and jwk.get("crv") in ("Ed25519", "Ed448") else []
