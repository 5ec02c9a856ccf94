"""The traffic intelligence blocks (`abuse`, `api_docs`) through the control plane: refused by path, and what a
route that lowers a limit needs."""
from __future__ import annotations

import pytest

from routes import services

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("block", "path"), [
    ({"abuse": {"mode": "block"}}, "abuse.mode"),
    ({"abuse": {"treshold": 4}}, "abuse.treshold"),
    ({"abuse": {"factor": 1.5}}, "abuse.factor"),
    ({"abuse": {"signatures": ["burst", "ddos"]}}, "abuse.signatures[1]"),
    ({"abuse": {"signatures": []}}, "abuse.signatures"),
    ({"abuse": "on"}, "abuse"),
    ({"api_docs": {"sample_rate": 2}}, "api_docs.sample_rate"),
    ({"api_docs": {"max_body_bytes": 1 << 30}}, "api_docs.max_body_bytes"),
    ({"api_docs": {"openapi": {"openapi": "2.0", "paths": {}}}}, "api_docs.openapi.openapi"),
    ({"api_docs": {"openapi": ["not", "a", "document"]}}, "api_docs.openapi"),
])
def test_a_bad_traffic_block_is_refused_by_path(route_doc, block, path):
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(**block), actor=None, source="api")
    assert path in caught.value.errors


def test_a_misspelt_abuse_key_is_named_with_the_one_meant(route_doc):
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(abuse={"treshold": 4}), actor=None, source="api")
    assert "threshold" in " ".join(caught.value.errors["abuse.treshold"])


def test_lowering_a_limit_needs_a_limit_to_lower(route_doc):
    with pytest.raises(services.ConfigError) as caught:
        services.save_route(route_doc(abuse={"mode": "enforce", "action": "lower"}), actor=None, source="api")
    assert "rate_limit" in " ".join(caught.value.errors["abuse.action"])
    for enough in ({"rate_limit": {"limit": 100, "window_s": 60}}, {}):
        abuse = {"mode": "enforce", "action": "lower", "personalized_limits": not enough}
        route = services.save_route(route_doc(abuse=abuse, **enough), actor=None, source="api")
        assert services.route_document(route)["abuse"] == abuse
        route.delete()
