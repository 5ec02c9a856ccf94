"""`manage.py exportconfig`: the configuration as JSON that imports back to the same configuration."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from routes import import_export, services
from routes.secrets import REDACTED
from tests.support.compat import kairos_examples

pytestmark = pytest.mark.django_db

JWT_SECRET = "jwt-secret-of-at-least-32-bytes-0123"  # long enough for HS256 (32 bytes)


def export(*args: str) -> dict:
    out = StringIO()
    call_command("exportconfig", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def configured(route_doc):
    import_export.import_config({"jwt": {"secret": JWT_SECRET, "issuer": "me"},
                            "routers": [route_doc(ai_policy={"enabled": True, "strategy": "content_analysis",
                                                             "api_key": "sk-live"}),
                                        route_doc(name="dns", protocol="dns", external_path="/dns",
                                                  methods=["POST"], backends=[{"host": "8.8.8.8", "port": 53}])]},
                           actor=None, source="import")


def test_it_writes_the_configuration_to_stdout_with_secrets_redacted(configured):
    data = export()
    assert [r["name"] for r in data["routers"]] == ["users", "dns"]
    assert data["jwt"]["secret"] == REDACTED
    assert data["routers"][0]["ai_policy"]["api_key"] == REDACTED


def test_it_writes_no_ids_as_the_earlier_gateways_format_has_none(configured):
    routers = export()["routers"]
    assert all("id" not in router and all("id" not in b for b in router["backends"]) for router in routers)


def test_include_secrets_writes_them(configured):
    data = export("--include-secrets")
    assert data["jwt"]["secret"] == JWT_SECRET
    assert data["routers"][0]["ai_policy"]["api_key"] == "sk-live"


def test_output_writes_a_file(configured, tmp_path):
    target = tmp_path / "out.json"
    call_command("exportconfig", "--output", str(target), stdout=StringIO(), stderr=StringIO())
    assert json.loads(target.read_text()) == export()


def test_an_export_imported_with_replace_reproduces_the_configuration(configured, tmp_path, route_doc):
    target = tmp_path / "out.json"
    call_command("exportconfig", "--output", str(target), stderr=StringIO())
    first = export("--include-secrets")
    services.save_route(route_doc(name="extra", external_path="/extra"), actor=None, source="api")
    call_command("importconfig", str(target), "--replace", stdout=StringIO(), stderr=StringIO())
    assert export("--include-secrets") == first


@pytest.mark.parametrize("path", kairos_examples())
def test_each_example_survives_export_and_import(path, tmp_path):
    call_command("importconfig", str(path), stdout=StringIO(), stderr=StringIO())
    target = tmp_path / "out.json"
    call_command("exportconfig", "--output", str(target), "--include-secrets", stderr=StringIO())
    first = export("--include-secrets")
    call_command("importconfig", str(target), "--replace", stdout=StringIO(), stderr=StringIO())
    assert export("--include-secrets") == first
