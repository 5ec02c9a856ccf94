"""Every URL under /api/ is for staff users only; the URL resolver is walked so new endpoints are covered."""
from __future__ import annotations

import base64

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
METHODS = ("get", "post", "put", "patch", "delete")


def api_urls() -> list[str]:
    """A concrete URL for every pattern mounted under /api/, sample values filled into its parameters."""
    found: list[str] = []

    def walk(patterns: list, prefix: str, namespace: str | None) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                inner = entry.namespace and (f"{namespace}:{entry.namespace}" if namespace else entry.namespace)
                walk(entry.url_patterns, prefix + str(entry.pattern), inner or namespace)
            elif isinstance(entry, URLPattern) and prefix.startswith("api/"):
                assert entry.name, f"give the URL pattern {prefix}{entry.pattern} a name"
                name = f"{namespace}:{entry.name}" if namespace else entry.name
                found.append(reverse(name, kwargs={key: "1" for key in entry.pattern.regex.groupindex}))

    walk(get_resolver().url_patterns, "", None)
    return sorted(set(found))


API_URLS = api_urls()


def test_the_walk_finds_the_known_endpoints():
    assert {"/api/schema/", "/api/routes/", "/api/routes/1/", "/api/config/import/"} <= set(API_URLS)


@pytest.mark.parametrize("url", API_URLS)
@pytest.mark.parametrize("method", METHODS)
def test_anonymous_callers_are_asked_for_credentials(url, method):
    response = getattr(APIClient(), method)(url)
    assert response.status_code == 401, response.content
    assert response["WWW-Authenticate"] == "Token"


def test_an_anonymous_read_is_401_with_a_challenge_in_the_error_shape():
    response = APIClient().get("/api/routes/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"errors": {"": ["Authentication credentials were not provided."]}}


def test_an_anonymous_write_is_401_with_a_challenge_in_the_error_shape(route_doc):
    response = APIClient().post("/api/routes/", route_doc(), format="json")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"errors": {"": ["Authentication credentials were not provided."]}}


@pytest.mark.parametrize("url", API_URLS)
@pytest.mark.parametrize("method", METHODS)
def test_users_who_are_not_staff_are_refused(plain_user, url, method):
    client = APIClient()
    client.force_authenticate(plain_user)
    assert getattr(client, method)(url).status_code == 403


@pytest.mark.parametrize("url", API_URLS)
@pytest.mark.parametrize("method", METHODS)
def test_staff_users_are_let_in(api, url, method):
    # Past the permission check a call may still be a 404 or a 405, but never a 401 or 403.
    assert getattr(api, method)(url, format="json").status_code not in (401, 403)


def test_staff_can_use_http_basic(staff_user):
    credentials = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    response = APIClient().get("/api/routes/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 200


def test_staff_can_use_a_token(staff_user):
    token = Token.objects.create(user=staff_user)
    response = APIClient().get("/api/routes/", HTTP_AUTHORIZATION=f"Token {token.key}")
    assert response.status_code == 200


def test_staff_can_use_the_admin_session(client, staff_user):
    client.login(username="alice", password=PASSWORD)
    assert client.get("/api/config/status/").status_code == 200


def test_a_session_write_needs_the_csrf_token(staff_user):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password=PASSWORD)
    assert client.post("/api/config/reload/").status_code == 403


def test_wrong_basic_credentials_are_401_with_a_challenge(staff_user):
    credentials = base64.b64encode(b"alice:wrong").decode()
    response = APIClient().get("/api/routes/", HTTP_AUTHORIZATION=f"Basic {credentials}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"errors": {"": ["Invalid username/password."]}}


def test_a_wrong_token_is_401_with_a_challenge(staff_user):
    response = APIClient().get("/api/routes/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401
    assert response.json() == {"errors": {"": ["Invalid token."]}}


def test_a_session_write_with_the_csrf_token_is_let_in(staff_user):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="alice", password=PASSWORD)
    client.get("/admin/")  # sets the CSRF cookie, as the admin's pages do
    response = client.post("/api/config/reload/", HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value)
    assert response.status_code == 200, response.content


def test_a_logged_out_browser_is_not_offered_a_password_dialog():
    # Only a Basic challenge makes a browser pop up its own password dialog over the admin's pages.
    response = APIClient().get("/api/metrics/history/", {"name": "requests"})
    assert response.status_code == 401
    assert "basic" not in response["WWW-Authenticate"].lower()


# --- Roles -------------------------------------------------------------------------------------------------

def readable(url: str) -> bool:
    """Whether the endpoint answers GET at all (a POST-only action is not a read)."""
    view = resolve(url).func
    actions = getattr(view, "actions", None)
    if actions is not None:
        return "get" in actions
    return hasattr(view.view_class, "get")


# The query a read needs to be a valid request.
READ_QUERIES = {"/api/metrics/history/": "?name=requests"}


def with_real_ids(url: str, route_id: int, backend_id: int, audit_id: int, consumer_id: int = 0,
                  certificate_id: int = 0, verdict_id: int = 0) -> str:
    """The sample URL with the ids of objects that exist (ids are not reused on PostgreSQL)."""
    for prefix, real in (("/api/routes/", route_id), ("/api/backends/", backend_id), ("/api/audit/", audit_id),
                         ("/api/consumers/", consumer_id), ("/api/certificates/", certificate_id),
                         ("/api/verdicts/", verdict_id)):
        if url.startswith(prefix + "1/"):
            return f"{prefix}{real}/{url[len(prefix) + 2:]}"
    return url


@pytest.mark.parametrize("url", [url for url in API_URLS if readable(url)])
def test_a_viewer_may_read_every_endpoint_that_answers_get(viewer_api, route_doc, url):
    import trustme

    from routes import services
    from routes.certificates.services import save_certificate
    from routes.consumers.services import save_consumer
    from routes.models import AuditEntry
    from tests.metrics.abuse.factories import make_verdict
    from tests.support.certificates import issued

    route = services.save_route(route_doc(), actor=None, source="api")
    audit_id = AuditEntry.objects.get().pk
    consumer = save_consumer({"name": "billing"}, actor=None, source="api")
    pair = issued(trustme.CA(), "api.example.com")
    certificate = save_certificate({"name": "api", "certificate": pair.chain, "key": pair.key}, actor=None,
                                   source="api")
    real = with_real_ids(url, route.pk, route.backends.first().pk, audit_id, consumer.pk, certificate.pk,
                         make_verdict().pk)
    response = viewer_api.get(real + READ_QUERIES.get(url, ""))
    assert response.status_code == 200, response.content[:300]


@pytest.mark.parametrize("url", API_URLS)
@pytest.mark.parametrize("method", ("post", "put", "patch", "delete"))
def test_a_viewer_may_write_nowhere(viewer_api, url, method):
    assert getattr(viewer_api, method)(url, {}, format="json").status_code == 403


@pytest.mark.parametrize("url", API_URLS)
@pytest.mark.parametrize("method", METHODS)
def test_an_operator_passes_every_permission_check(operator_api, url, method):
    assert getattr(operator_api, method)(url, format="json").status_code not in (401, 403)


def test_a_viewers_refusal_says_which_role_is_needed(viewer_api):
    response = viewer_api.post("/api/config/reload/")
    assert response.json() == {"errors": {"": ["Changing the configuration needs the operator role."]}}


def test_staff_without_a_role_can_read_but_not_write(db):
    from tests.support.users import role_user

    client = APIClient()
    client.force_authenticate(role_user("nora", None))
    assert client.get("/api/routes/").status_code == 200
    assert client.post("/api/config/reload/").status_code == 403


def test_an_operator_can_create_a_route(operator_api, route_doc):
    assert operator_api.post("/api/routes/", route_doc(), format="json").status_code == 201


def test_an_operator_can_override_backend_health(operator_api, route_doc):
    route_id = operator_api.post("/api/routes/", route_doc(), format="json").json()["id"]
    from routes.models import Backend

    backend = Backend.objects.filter(route_id=route_id).first()
    response = operator_api.post(f"/api/backends/{backend.pk}/health/", {"override": "down"}, format="json")
    assert response.status_code == 200
