"""JwtPolicy.from_config: a wrong `jwt` block is refused at table-build time with a BlockError at the key."""
from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from protocols.auth import JwtPolicy
from protocols.block_errors import BlockError
from tests.protocols.auth.tokens import SECRET, ec_key, ed_key, rsa_key


def refused(block: dict) -> tuple[str, str]:
    """(path inside the block, message) of the one problem the compiler stops at."""
    with pytest.raises(BlockError) as caught:
        JwtPolicy.from_config(block)
    [(path, messages)] = caught.value.errors.items()
    return path, " ".join(messages)


def test_a_secret_alone_means_hs256():
    assert JwtPolicy.from_config({"secret": SECRET}).algorithms == {"HS256"}


def test_a_jwks_url_alone_means_rs256():
    assert JwtPolicy.from_config({"jwks_url": "https://id.example/jwks.json"}).algorithms == {"RS256"}


def test_it_refuses_the_none_algorithm():
    path, message = refused({"secret": SECRET, "algorithms": ["HS256", "none"]})
    assert path == "algorithms" and "none" in message


def test_it_refuses_an_unknown_algorithm():
    path, message = refused({"secret": SECRET, "algorithms": ["HS1"]})
    assert path == "algorithms" and "HS1" in message


def test_it_refuses_a_block_without_a_key():
    assert refused({"issuer": "x"}) == (
        "", "The jwt block needs a key: secret, public_key + algorithm, public_keys or jwks_url.")


def test_it_refuses_a_short_secret():
    path, message = refused({"secret": "too-short"})
    assert path == "secret" and "at least 32" in message
    path, message = refused({"secret": SECRET, "algorithms": ["HS512"]})
    assert path == "secret" and "HS512 needs at least 64" in message


def test_it_refuses_a_public_key_as_a_secret():
    path, message = refused({"secret": rsa_key().public_pem})
    assert path == "secret" and "public_key" in message


def test_it_refuses_a_private_key():
    pem = rsa_key().private_pem.decode()
    path, message = refused({"public_key": pem, "algorithm": "RS256"})
    assert path == "public_key" and "private key" in message
    path, message = refused({"public_keys": [{"pem": rsa_key().public_pem, "algorithm": "RS256"},
                                             {"pem": pem, "algorithm": "RS256"}]})
    assert path == "public_keys[1]" and "private key" in message


@pytest.mark.parametrize(("key", "algorithm"), [
    (lambda: ec_key().public_pem, "RS256"),
    (lambda: rsa_key().public_pem, "ES256"),
    (lambda: ec_key("P-384").public_pem, "ES256"),
    (lambda: rsa_key().public_pem, "EdDSA"),
    (lambda: ed_key().public_pem, "ES256"),
])
def test_it_refuses_a_key_of_the_wrong_kind_for_its_algorithm(key, algorithm):
    path, message = refused({"public_key": key(), "algorithm": algorithm})
    assert path == "public_key" and message.startswith(algorithm)


def test_it_refuses_a_small_rsa_key():
    small = rsa.generate_private_key(65537, 1024).public_key()
    pem = small.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
    assert refused({"public_key": pem, "algorithm": "RS256"}) == (
        "public_key", "The RSA key has 1024 bits; at least 2048 needed.")


def test_it_refuses_an_hmac_algorithm_for_a_public_key():
    path, message = refused({"public_key": rsa_key().public_pem, "algorithm": "HS256"})
    assert path == "public_key" and message.startswith("Algorithm must be one of")


def test_it_accepts_a_certificate_as_public_key():
    import datetime

    key = rsa_key()
    name = x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "issuer.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.private.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key.private, hashes.SHA256()))
    policy = JwtPolicy.from_config({"public_key": cert.public_bytes(Encoding.PEM).decode(), "algorithm": "RS256"})
    assert policy.static_keys[0].key == key.private.public_key()


def test_it_refuses_an_algorithm_list_that_contradicts_the_keys():
    path, message = refused({"public_key": rsa_key().public_pem, "algorithm": "RS256", "algorithms": ["PS256"]})
    assert path == "algorithms" and "RS256" in message
    path, message = refused({"public_key": rsa_key().public_pem, "algorithm": "RS256",
                             "algorithms": ["RS256", "HS256"]})
    assert path == "algorithms" and "no jwt.secret" in message
    path, message = refused({"secret": SECRET, "algorithms": ["HS256", "ES256"]})
    assert path == "algorithms" and "ES256" in message


def test_it_refuses_an_unknown_key_so_typos_do_not_pass_silently():
    path, message = refused({"secret": SECRET, "audiance": "x"})
    assert path == "" and "audiance" in message


def test_it_refuses_a_jwks_url_that_is_not_http():
    assert refused({"jwks_url": "file:///etc/jwks.json"}) == ("jwks_url", "Must be an http(s) URL.")


@pytest.mark.parametrize("header", ["Host", "authorization", "X-Forwarded-For", "bad header", ""])
def test_it_refuses_forwarding_a_claim_into_a_header_the_proxy_owns(header):
    assert refused({"secret": SECRET, "forward_claims": {"sub": header}})[0] == "forward_claims"


@pytest.mark.parametrize(("key", "value"), [
    ("leeway_s", -1), ("leeway_s", "30"), ("require_exp", "yes"), ("required_claims", ""),
    ("required_scopes", [1]), ("cache_size", -1), ("issuer", 7), ("audience", [""]),
])
def test_it_refuses_a_value_of_the_wrong_type(key, value):
    path, message = refused({"secret": SECRET, key: value})
    assert path == key and message.startswith("Must be")


def test_it_loads_without_django():
    code = "import sys, protocols.auth; print(any(m.startswith('django') for m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
