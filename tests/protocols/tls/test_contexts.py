"""The proxy's TLS listener: certificates by SNI, protocol versions and suites, contexts kept across tables."""
from __future__ import annotations

import re
import shutil
import ssl
import subprocess
import threading
import time

import pytest
import trustme
from cryptography import x509

from protocols.table import RouteTable
from protocols.tls.contexts import ServerContexts
from tests.support.proxy import ProxyServer, route
from tests.support.tls import (
    HttpsConnection,
    certificate,
    client_context,
    handshake,
    https_call,
    serial_of,
    served_serial,
    spec_serial,
)
from tests.support.upstream import UpstreamServer


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def upstream():
    with UpstreamServer() as server:
        yield server


def test_it_serves_the_certificate_named_by_sni(ca, upstream):
    a, b = certificate(ca, "a.example"), certificate(ca, "b.example")
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(a, b)) as proxy:
        assert served_serial(proxy.port, "a.example", client_context(ca)) == spec_serial(a)
        assert served_serial(proxy.port, "b.example", client_context(ca)) == spec_serial(b)


def test_an_exact_name_wins_over_a_wildcard(ca, upstream):
    wildcard, exact = certificate(ca, "*.example.com"), certificate(ca, "api.example.com")
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(wildcard, exact)) as proxy:
        assert served_serial(proxy.port, "api.example.com", client_context(ca)) == spec_serial(exact)
        assert served_serial(proxy.port, "www.example.com", client_context(ca)) == spec_serial(wildcard)


def test_a_wildcard_covers_one_label_only(ca, upstream):
    wildcard, fallback = certificate(ca, "*.example.com"), certificate(ca, "fallback.example", default=True)
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(wildcard, fallback)) as proxy:
        context = client_context(ca)
        context.check_hostname = False
        assert served_serial(proxy.port, "a.b.example.com", context) == spec_serial(fallback)


def test_an_unknown_name_and_no_name_get_the_default_certificate(ca, upstream):
    a, fallback = certificate(ca, "a.example"), certificate(ca, "fallback.example", default=True)
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(a, fallback)) as proxy:
        context = client_context(ca)
        context.check_hostname = False
        assert served_serial(proxy.port, "unknown.example", context) == spec_serial(fallback)
        assert served_serial(proxy.port, None, client_context(ca)) == spec_serial(fallback)


def test_without_a_default_an_unknown_name_fails_the_handshake_with_unrecognized_name(ca, upstream):
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(certificate(ca, "a.example"),)) as proxy:
        with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME"):
            handshake(proxy.port, "other.example", client_context(ca))
        assert proxy.app.recorder.totals.tls_handshake_errors.get("no_certificate", 0) >= 1


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_1_2_and_1_3_are_served(ca, upstream, version):
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(certificate(ca, "a.example"),)) as proxy:
        with handshake(proxy.port, "a.example", client_context(ca, version=version)) as tls:
            assert tls.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2", ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[version]
            assert tls.selected_alpn_protocol() in (None, "http/1.1")


def test_tls_1_2_offers_only_ecdhe_with_an_aead(ca, upstream):
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(certificate(ca, "a.example"),)) as proxy:
        context = client_context(ca, version=ssl.TLSVersion.TLSv1_2)
        context.set_ciphers("ECDHE+AES128+SHA256:ECDHE+AES256+SHA384:AES128-GCM-SHA256")  # CBC, or no ECDHE
        with pytest.raises(ssl.SSLError):
            handshake(proxy.port, "a.example", context)
        with handshake(proxy.port, "a.example", client_context(ca, version=ssl.TLSVersion.TLSv1_2)) as tls:
            name = tls.cipher()[0]
            assert name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name)


def test_requests_over_tls_are_proxied_with_https_as_their_scheme(ca, upstream):
    routes = [route("r", "/hello", upstream.port)]
    with ProxyServer(routes, tls=True, certificates=(certificate(ca, "a.example"),)) as proxy:
        reply = https_call(proxy.port, "a.example", client_context(ca), "GET", "/hello")
        assert reply.status == 200
        assert upstream.requests[-1].header("x-forwarded-proto") == ["https"]
        assert https_call(proxy.port, "a.example", client_context(ca), "GET", "/health").status == 200


def test_contexts_are_reused_while_the_certificate_is_unchanged(ca):
    contexts = ServerContexts()
    a = certificate(ca, "a.example")
    first = contexts.lookup((a,)).pick("a.example")
    assert contexts.lookup((a,)).pick("a.example") is first
    renewed = certificate(ca, "a.example")
    assert contexts.lookup((renewed,)).pick("a.example") is not first


def test_contexts_are_rebuilt_when_the_client_cas_change(ca):
    contexts = ServerContexts()
    a = certificate(ca, "a.example")
    first = contexts.lookup((a,)).pick("a.example")
    asking = contexts.lookup((a,), ca.cert_pem.bytes().decode()).pick("a.example")
    assert asking is not first
    assert asking is not None and asking.verify_mode == ssl.CERT_OPTIONAL


def test_a_certificate_that_does_not_load_is_left_out_and_the_others_served(ca, caplog):
    broken = certificate(ca, "broken.example")
    broken = type(broken)(**{**{f: getattr(broken, f) for f in broken.__slots__}, "key_pem": "not a key"})
    lookup = ServerContexts().lookup((broken, certificate(ca, "a.example")))
    assert lookup.pick("broken.example") is None
    assert lookup.pick("a.example") is not None
    assert "broken.example" not in caplog.text or "cannot be served" in caplog.text


def test_a_plan_builds_its_lookup_once_per_table(ca, upstream):
    with ProxyServer([route("r", "/", upstream.port)], tls=True, certificates=(certificate(ca, "a.example"),)) as proxy:
        dataplane = proxy.app.dataplane
        assert dataplane.current().tls is dataplane.current().tls
        proxy.state.install(RouteTable([], version=2, certificates=(certificate(ca, "b.example"),)))
        assert dataplane.current().tls.pick("b.example") is not None
        assert dataplane.current().tls.pick("a.example") is None


def test_a_renewed_certificate_is_served_from_the_next_handshake_while_requests_go_on(ca, upstream):
    """20 clients loop over new and kept-alive HTTPS connections for 3 s; the certificate is renewed midway."""
    old = certificate(ca, "a.example")
    routes = [route("r", "/loop", upstream.port)]
    with ProxyServer(routes, tls=True, certificates=(old,)) as proxy:
        failures: list[BaseException] = []
        counts = [0] * 20
        stop = threading.Event()

        def client(index: int) -> None:
            kept = HttpsConnection(proxy.port, "a.example", client_context(ca), 10)
            while not stop.is_set():
                try:
                    if index % 2:  # a new connection (a new handshake) for every request
                        assert https_call(proxy.port, "a.example", client_context(ca), "GET", "/loop").status == 200
                    else:
                        kept.request("GET", "/loop")
                        response = kept.getresponse()
                        response.read()
                        assert response.status == 200
                    counts[index] += 1
                except BaseException as exc:  # noqa: BLE001 - every failure is reported below
                    failures.append(exc)
                    return
            kept.close()

        kept_before = handshake(proxy.port, "a.example", client_context(ca))
        threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        renewed = certificate(ca, "a.example")
        proxy.state.install(RouteTable(routes, version=2, certificates=(renewed,)))
        assert served_serial(proxy.port, "a.example", client_context(ca)) == spec_serial(renewed)
        time.sleep(1.5)
        stop.set()
        for thread in threads:
            thread.join(20)
        # A connection opened before the swap keeps its certificate and still serves.
        der = kept_before.getpeercert(binary_form=True)
        kept_before.sendall(b"GET /loop HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n")
        assert kept_before.recv(12).startswith(b"HTTP/1.1 200")
        kept_before.close()
    assert failures == []
    assert all(count > 0 for count in counts)
    assert der is not None and serial_of(der) == spec_serial(old)


def openssl_served_serial(port: int, *options: str) -> int:
    """The serial number of the certificate `openssl s_client` was served."""
    result = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *options], input="",
                            capture_output=True, text=True, timeout=20)
    pem = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", result.stdout, re.DOTALL)
    assert pem is not None, result.stderr
    return x509.load_pem_x509_certificate(pem[0].encode()).serial_number


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_openssl_is_served_the_certificate_of_the_name_it_asks_for_or_the_default(ca, upstream, version):
    a, b, fallback = (certificate(ca, "a.example"), certificate(ca, "b.example"),
                      certificate(ca, "fallback.example", default=True))
    with ProxyServer([route("r", "/x", upstream.port)], tls=True, certificates=(a, b, fallback)) as proxy:
        assert openssl_served_serial(proxy.port, "-servername", "a.example", version) == spec_serial(a)
        assert openssl_served_serial(proxy.port, "-servername", "b.example", version) == spec_serial(b)
        assert openssl_served_serial(proxy.port, "-servername", "nobody.example", version) == spec_serial(fallback)


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl command")
def test_curl_with_the_ca_and_a_resolved_name_gets_the_answer(ca, upstream, tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_bytes(ca.cert_pem.bytes())
    served = (certificate(ca, "a.example"),)
    with ProxyServer([route("r", "/x", upstream.port)], tls=True, certificates=served) as proxy:
        result = subprocess.run(
            ["curl", "-sS", "-i", "--cacert", str(bundle), "--resolve", f"a.example:{proxy.port}:127.0.0.1",
             f"https://a.example:{proxy.port}/x"], capture_output=True, text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("HTTP/2 200")  # the listener offers h2 first by ALPN, and curl takes it
    assert "strict-transport-security: max-age=31536000" in result.stdout.lower()
