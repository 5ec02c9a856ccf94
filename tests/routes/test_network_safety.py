"""Backends and JWKS URLs at link-local or cloud metadata addresses are refused unless the environment allows."""
from __future__ import annotations

import pytest

from routes import import_export, services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("host", ["http://169.254.169.254", "http://[fe80::1]", "http://100.100.100.200",
                                  "http://[fd00:ec2::254]", "http://metadata.google.internal",
                                  "http://2852039166", "http://0xa9fea9fe"])
def test_a_backend_at_a_metadata_address_is_refused(route_doc, host):
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(backends=[{"host": host, "port": 80}]), actor=None, source="api")
    message = caught.value.errors["backends[0].host"][0]
    assert "RUSTA_ALLOW_LINK_LOCAL_BACKENDS" in message


def test_the_environment_can_allow_them(route_doc, settings):
    settings.RUSTA_ALLOW_LINK_LOCAL_BACKENDS = True
    route = services.save_route(route_doc(backends=[{"host": "http://169.254.169.254", "port": 80}]), actor=None,
                                source="api")
    assert route.backends.get().host == "169.254.169.254"


def test_ordinary_private_and_loopback_backends_are_fine(route_doc):
    backends = [{"host": "http://10.0.0.5", "port": 80}, {"host": "http://127.0.0.1", "port": 81},
                {"host": "http://api.internal", "port": 82}]
    assert services.save_route(route_doc(backends=backends), actor=None, source="api").backends.count() == 3


def test_an_import_refuses_them_too_by_path(route_doc):
    data = {"routers": [route_doc(), route_doc(name="b", external_path="/b",
                                               backends=[{"host": "http://169.254.169.254", "port": 80}])]}
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config(data, actor=None, source="import")
    assert "routers[1].backends[0].host" in caught.value.errors


def test_a_jwks_url_at_a_metadata_address_is_refused():
    data = {"jwt": {"jwks_url": "http://169.254.169.254/latest/meta-data/iam/"}, "routers": []}
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config(data, actor=None, source="import")
    assert "jwt.jwks_url" in caught.value.errors
