"""A route's `tls` block: checked by the data plane's compiler with every problem by path, shown back as stored
(its CA bundle is public), and handed to the data plane in RouteSpec.policies["tls"]."""
from __future__ import annotations

import pytest
import trustme

from routes.snapshot import build_table

pytestmark = pytest.mark.django_db
CA_PEM = trustme.CA().cert_pem.bytes().decode()
MTLS = {"client_certificate": "required", "client_ca": CA_PEM, "subject_header": "X-Client-Subject"}


def test_a_tls_block_saved_through_the_api_is_shown_back_and_reaches_the_data_plane(api, route_doc):
    response = api.post("/api/routes/", route_doc(tls={"redirect_http": True, **MTLS}), format="json")
    assert response.status_code == 201, response.json()
    shown = api.get(f"/api/routes/{response.json()['id']}/").json()["tls"]
    assert shown == {"redirect_http": True, **MTLS}  # the CA bundle is not a secret: never <redacted>
    assert build_table().routes[0].spec.policies["tls"] == {"redirect_http": True, **MTLS}


def test_a_misspelt_key_is_refused_by_its_path(api, route_doc):
    response = api.post("/api/routes/", route_doc(tls={"redirect_htp": True}), format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert list(errors) == ["tls.redirect_htp"] and "Did you mean 'redirect_http'" in errors["tls.redirect_htp"][0]


def test_bad_values_are_refused_each_by_its_path(api, route_doc):
    response = api.post("/api/routes/", route_doc(tls={"redirect_status": 200, "client_certificate": "optional",
                                                       "subject_header": "no spaces allowed"}), format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"tls.redirect_status", "tls.client_ca", "tls.subject_header"}


def test_a_client_ca_that_is_not_pem_is_refused(api, route_doc):
    response = api.post("/api/routes/", route_doc(tls={"client_certificate": "required", "client_ca": "nope"}),
                        format="json")
    assert response.status_code == 400 and list(response.json()["errors"]) == ["tls.client_ca"]


def test_a_tls_block_on_a_websocket_route_is_refused(api, route_doc):
    response = api.post("/api/routes/", route_doc(protocol="websocket", tls={"redirect_http": True},
                                                  backends=[{"host": "ws://10.0.0.5", "port": 8080}]), format="json")
    assert response.status_code == 400
    assert "Only http and grpc and llm routes use the tls block" in response.json()["errors"]["tls"][0]


def test_client_certificates_are_refused_on_llm_routes_whose_front_doors_do_not_check_them(api, route_doc):
    llm = {"targets": [{"provider": "openai", "model": "gpt-4o-mini"}]}
    response = api.post("/api/routes/", route_doc(protocol="llm", backends=[], llm=llm, tls=MTLS), format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["tls.client_certificate"] == [
        'Client certificates are checked on grpc and http routes only and this route\'s protocol is llm: use "off".']


def test_client_certificates_are_taken_on_grpc_routes(api):
    response = api.post("/api/routes/", {"name": "g", "protocol": "grpc", "external_path": "/pkg.Svc/{method}",
                                         "backends": [{"host": "http://10.0.0.5", "port": 50051}], "tls": MTLS},
                        format="json")
    assert response.status_code == 201, response.json()
