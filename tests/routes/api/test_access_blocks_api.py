"""A route's `jwt`, `rate_limit`, `ftp` and `websocket` blocks over the API and the import: refused by path when
they would not compile, saved when they do; the route's JWT secret and FTP password are write-only."""
from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command

from routes import import_export, services
from routes.models import AuditEntry, Route
from routes.secrets import REDACTED

pytestmark = pytest.mark.django_db

JWT_SECRET = "route-jwt-secret-that-must-never-be-shown-0123"
FTP_PASSWORD = "ftp-password-that-must-never-be-shown"
NEW_JWT_SECRET = "a-rotated-route-jwt-secret-never-shown-4567"


def orders(route_doc, **fields):
    return route_doc(name="orders", external_path="/orders", internal_path="", methods=["GET"],
                     jwt={"secret": JWT_SECRET, "issuer": "https://idp.example.com"}, **fields)


def files(**fields):
    return {"name": "files", "protocol": "ftp", "external_path": "/files", "methods": ["GET", "PUT"],
            "backends": [{"host": "ftp://10.0.0.7"}],
            "ftp": {"username": "reports", "password": FTP_PASSWORD, "root": "/srv/reports"}, **fields}


@pytest.fixture
def stored(api, route_doc):
    for doc in (orders(route_doc), files()):
        response = api.post("/api/routes/", doc, format="json")
        assert response.status_code == 201, response.json()


def assert_no_secret(text: str) -> None:
    assert JWT_SECRET not in text and FTP_PASSWORD not in text and NEW_JWT_SECRET not in text


# --- Refused by path, from the API and from the import ---------------------------------------------------------

@pytest.mark.parametrize(("fields", "path"), [
    ({"rate_limit": {"limit": 10, "window_type": "leaky_bucket"}}, "rate_limit.window_type"),
    ({"jwt": {"secret": JWT_SECRET, "algorithms": ["HS256", "none"]}}, "jwt.algorithms"),
    ({"jwt": {"secret": "too-short"}}, "jwt.secret"),
    ({"websocket": {"idle_timeout_s": 60}}, "websocket"),
])
def test_the_api_refuses_an_http_route_with_a_bad_block_naming_its_path(api, route_doc, fields, path):
    response = api.post("/api/routes/", route_doc(**fields), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == [path]
    assert not Route.objects.exists()


def test_the_api_refuses_an_ftp_route_with_a_bad_ftp_block_naming_its_path(api):
    response = api.post("/api/routes/", files(ftp={"passthrough_basic_auth": "yes"}), format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"ftp.passthrough_basic_auth": ["Must be true or false."]}


def test_the_api_refuses_a_websocket_route_with_a_bad_websocket_block_naming_its_path(api):
    doc = {"name": "chat", "protocol": "websocket", "external_path": "/chat", "methods": ["GET"],
           "backends": [{"host": "ws://10.0.0.8", "port": 80}], "websocket": {"max_message_bytes": 0}}
    response = api.post("/api/routes/", doc, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["websocket.max_message_bytes"]


def test_the_import_api_refuses_a_router_with_a_bad_block_naming_its_path(api, route_doc):
    data = {"routers": [route_doc(), files(ftp={"root": "/../etc"})]}
    response = api.post("/api/config/import/", data, format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["routers[1].ftp.root"]
    assert not Route.objects.exists()


def test_the_import_refuses_a_router_with_a_bad_rate_limit_naming_its_path(route_doc):
    with pytest.raises(services.ConfigError) as caught:
        import_export.import_config({"routers": [route_doc(rate_limit={"limit": 0})]}, actor=None, source="import")
    assert list(caught.value.errors) == ["routers[0].rate_limit.limit"]


def test_the_import_api_refuses_a_bad_gateway_wide_jwt_block_naming_its_path(api):
    response = api.post("/api/config/import/", {"jwt": {"secret": JWT_SECRET, "realm": 5}, "routers": []},
                        format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["jwt.realm"]


# --- Saved when they compile -----------------------------------------------------------------------------------

def test_good_blocks_are_saved_as_sent(api, route_doc):
    rate_limit = {"limit": 10, "window_s": 1, "algorithm": "token_bucket", "burst": 20}
    response = api.post("/api/routes/", orders(route_doc, rate_limit=rate_limit), format="json")
    assert response.status_code == 201, response.json()
    route = Route.objects.get(name="orders")
    assert route.rate_limit == rate_limit
    assert route.jwt == {"secret": JWT_SECRET, "issuer": "https://idp.example.com"}


def test_an_imported_ftp_route_keeps_its_block(route_doc):
    import_export.import_config({"routers": [files()]}, actor=None, source="import")
    assert Route.objects.get(name="files").ftp["password"] == FTP_PASSWORD


# --- Write-only secrets ----------------------------------------------------------------------------------------

def test_reading_a_route_shows_its_secrets_redacted(api, stored):
    jwt_block = api.get("/api/routes/orders/").json()["jwt"]
    ftp_block = api.get("/api/routes/files/").json()["ftp"]
    assert jwt_block == {"secret": REDACTED, "issuer": "https://idp.example.com"}
    assert ftp_block == {"username": "reports", "password": REDACTED, "root": "/srv/reports"}


def test_no_route_read_returns_a_secret(api, stored):
    bodies = [api.get(url).content.decode() for url in ("/api/routes/", "/api/routes/orders/",
                                                         "/api/routes/files/", "/api/config/")]
    assert_no_secret("".join(bodies))


def test_creating_a_route_answers_its_document_without_the_secret(api, route_doc):
    response = api.post("/api/routes/", orders(route_doc), format="json")
    assert_no_secret(response.content.decode())


def test_the_dry_run_answers_the_document_without_the_secret(api):
    response = api.post("/api/routes/validate/", files(), format="json")
    assert response.json()["valid"] is True
    assert_no_secret(response.content.decode())


def test_the_audit_trail_never_holds_a_route_secret(api, stored):
    api.patch("/api/routes/orders/", {"jwt": {"secret": NEW_JWT_SECRET}}, format="json")
    entries = list(AuditEntry.objects.filter(object_type="route").values_list("changes", flat=True))
    assert len(entries) == 3
    assert_no_secret(json.dumps(entries) + api.get("/api/audit/").content.decode())


def test_a_change_of_another_field_keeps_the_stored_secrets(api, stored):
    assert api.patch("/api/routes/orders/", {"priority": 5}, format="json").status_code == 200
    assert api.patch("/api/routes/files/", {"methods": ["GET"]}, format="json").status_code == 200
    assert Route.objects.get(name="orders").jwt["secret"] == JWT_SECRET
    assert Route.objects.get(name="files").ftp["password"] == FTP_PASSWORD


def test_a_document_read_from_the_api_and_sent_back_keeps_the_stored_secrets(api, stored):
    for name in ("orders", "files"):
        document = api.get(f"/api/routes/{name}/").json()
        document["priority"] = 7
        assert api.put(f"/api/routes/{name}/", document, format="json").status_code == 200
    assert Route.objects.get(name="orders").jwt["secret"] == JWT_SECRET
    assert Route.objects.get(name="files").ftp["password"] == FTP_PASSWORD


def test_a_redacted_secret_with_nothing_stored_is_refused(api):
    response = api.post("/api/routes/", files(ftp={"username": "reports", "password": REDACTED}), format="json")
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["ftp.password"]


def test_the_default_export_marks_route_secrets_redacted(api, stored):
    body = api.get("/api/config/export/").content.decode()
    assert_no_secret(body)
    routers = {router["name"]: router for router in json.loads(body)["routers"]}
    assert routers["orders"]["jwt"]["secret"] == routers["files"]["ftp"]["password"] == REDACTED


def test_the_export_command_marks_route_secrets_redacted(stored):
    out = StringIO()
    call_command("exportconfig", stdout=out)
    assert_no_secret(out.getvalue())


def test_a_superuser_export_with_the_secrets_flag_contains_the_route_secrets(api, stored):
    body = api.get("/api/config/export/?include_secrets=true").content.decode()
    routers = {router["name"]: router for router in json.loads(body)["routers"]}
    assert routers["orders"]["jwt"]["secret"] == JWT_SECRET
    assert routers["files"]["ftp"]["password"] == FTP_PASSWORD


def test_an_operator_may_not_export_the_route_secrets(operator_api, stored):
    response = operator_api.get("/api/config/export/?include_secrets=true")
    assert response.status_code == 403
    assert_no_secret(response.content.decode())


def test_the_export_command_with_include_secrets_contains_the_route_secrets(stored):
    out = StringIO()
    call_command("exportconfig", "--include-secrets", stdout=out)
    assert JWT_SECRET in out.getvalue() and FTP_PASSWORD in out.getvalue()


def test_a_redacted_export_imported_back_keeps_the_route_secrets(stored):
    import_export.import_config(import_export.export_config(), actor=None, source="import", replace=True)
    assert Route.objects.get(name="orders").jwt["secret"] == JWT_SECRET
    assert Route.objects.get(name="files").ftp["password"] == FTP_PASSWORD
