"""routes.certificates.pem: a chain, its key and its host names read with cryptography, every problem by field."""
from __future__ import annotations

import pytest
import trustme

from routes.certificates import pem
from tests.support.certificates import ec_key_pem, encrypted, issued

CA = trustme.CA()


def read(chain: str) -> pem.Chain:
    errors: dict[str, list[str]] = {}
    found = pem.read_chain(chain, errors)
    assert found is not None and not errors, errors
    return found


@pytest.mark.parametrize("rsa", [True, False], ids=["rsa", "ec"])
def test_the_leafs_own_key_matches_and_another_does_not(rsa):
    pair = issued(CA, "api.example.com", rsa=rsa)
    chain = read(pair.chain)
    errors: dict[str, list[str]] = {}
    assert pem.key_matches(chain, pem.read_key(pair.key, errors))
    assert not pem.key_matches(chain, pem.read_key(ec_key_pem(), errors))
    assert not errors


def test_the_leaf_is_read_for_its_names_dates_and_fingerprint():
    chain = read(issued(CA, "api.example.com", "*.api.example.com").chain)
    assert chain.dns_names == ("api.example.com", "*.api.example.com")
    assert chain.not_after > chain.not_before
    assert len(chain.fingerprint_sha256) == 64


def test_an_intermediate_chain_in_order_is_read_and_out_of_order_is_refused():
    pair = issued(CA.create_child_ca(), "api.example.com")
    assert len(read(pair.chain).certificates) == 2
    blocks = pair.chain.split("-----END CERTIFICATE-----\n")
    swapped = blocks[1] + "-----END CERTIFICATE-----\n" + blocks[0] + "-----END CERTIFICATE-----\n"
    errors: dict[str, list[str]] = {}
    assert pem.read_chain(swapped, errors) is None
    assert "put the leaf first" in errors["certificate"][0]


def test_an_encrypted_key_is_refused_saying_so():
    errors: dict[str, list[str]] = {}
    assert pem.read_key(encrypted(issued(CA, "a.example.com").key), errors) is None
    assert errors["key"][0].startswith("The key is encrypted")


@pytest.mark.parametrize("text", ["", "not a pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_garbage_is_not_a_key(text):
    errors: dict[str, list[str]] = {}
    assert pem.read_key(text, errors) is None
    assert list(errors) == ["key"]


def test_hosts_left_empty_are_the_certificates_own_names():
    chain = read(issued(CA, "api.example.com", "www.example.com").chain)
    assert pem.hosts_of([], chain, {}) == ["api.example.com", "www.example.com"]


def test_hosts_are_lower_cased_and_must_be_names_the_certificate_is_valid_for():
    chain = read(issued(CA, "*.example.com").chain)
    errors: dict[str, list[str]] = {}
    hosts = pem.hosts_of(["API.example.com", "*.example.com", "a.b.example.com", "10.0.0.5", "x.example.com:443"],
                         chain, errors)
    assert hosts == ["api.example.com", "*.example.com"]
    assert set(errors) == {"hosts[2]", "hosts[3]", "hosts[4]"}
    assert "not valid for a.b.example.com: it names *.example.com" in errors["hosts[2]"][0]
