"""Every URL pattern of the admin listener, walked from the URLconf: anonymous callers are sent to the login page
(admin) or refused (API); a viewer can read the configuration pages and change nothing.

Parameters are filled with the ids of real objects, so a page is reached rather than a 404. A new pattern that
no rule below covers fails `test_every_pattern_has_an_expectation` until someone decides what it should do.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
import trustme
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from rest_framework.authtoken.models import Token

from metrics.models import RetentionPolicy, Verdict
from routes import import_export, services
from routes.certificates.services import save_certificate
from routes.consumers.models import Consumer
from routes.consumers.services import issue_key, save_consumer
from routes.health.models import BackendHealth
from routes.models import AuditEntry, GatewaySettings, Route
from tests.metrics.abuse.factories import make_verdict
from tests.support.certificates import issued
from tests.support.users import PASSWORD, role_user

pytestmark = pytest.mark.django_db
_PARAM = re.compile(r"<(?:\w+:)?(\w+)>|\(\?P<(\w+)>[^)]*\)")


def patterns() -> list[str]:
    """Every URL pattern of the admin listener as one string, like `admin/routes/route/<path:object_id>/change/`."""
    found: list[str] = []

    def walk(entries: list, prefix: str) -> None:
        for entry in entries:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                found.append(prefix + str(entry.pattern))

    walk(get_resolver().url_patterns, "")
    return found


PATTERNS = patterns()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class World:
    """Real objects whose ids fill the patterns' parameters."""

    route: Route
    viewer: object
    other_user: object
    consumer: Consumer
    certificate: Any
    verdict: Verdict

    def value(self, pattern: str, name: str) -> str:
        route = self.route
        backend = route.backends.first()
        by_model = {
            "routes/route": route.pk, "routes/auditentry": AuditEntry.objects.first().pk,
            "routes/gatewaysettings": GatewaySettings.objects.get().pk, "routes/backendhealth": backend.pk,
            "metrics/retentionpolicy": RetentionPolicy.objects.first().pk, "auth/user": self.other_user.pk,
            "auth/group": Group.objects.first().pk, "authtoken/tokenproxy": Token.objects.get().user_id,
            "routes/consumer": self.consumer.pk, "routes/certificate": self.certificate.pk,
            "metrics/verdict": self.verdict.pk,
        }
        if name == "object_id":
            if pattern.startswith("admin/r/"):
                return str(route.pk)
            model = "/".join(pattern.split("/")[1:3])
            return str(by_model[model])
        return str({
            "content_type_id": ContentType.objects.get_for_model(Route).pk, "route": route.name,
            "consumer_id": self.consumer.pk, "consumer": self.consumer.name, "key_id": self.consumer.api_keys.get().pk,
            "view": "overview", "app_label": "routes", "url": "no-such-page/",
            "pk": self.verdict.pk if "verdict" in pattern else AuditEntry.objects.first().pk,
            "advice_id": f"timeout:{route.name}:000000000000",
            "id": backend.pk if "backends" in pattern else (self.other_user.pk if "auth/user" in pattern
                                                           else self.consumer.pk if "consumers" in pattern
                                                           else self.certificate.pk if "certificates" in pattern
                                                           else self.verdict.pk if "verdicts" in pattern
                                                           else route.pk),
        }[name])

    def url(self, pattern: str) -> str:
        text = _PARAM.sub(lambda m: self.value(pattern, m.group(1) or m.group(2)), pattern)
        return "/" + text.replace("^", "").replace("$", "")


@pytest.fixture
def world(route_doc) -> World:
    route = services.save_route(route_doc(), actor=None, source="api")
    import_export.import_config({"cors": {"origins": ["*"]}, "routers": [route_doc()]}, actor=None, source="import")
    BackendHealth.objects.get_or_create(backend=route.backends.first())
    other = role_user("ursula", "superuser")
    Token.objects.create(user=other)
    consumer = save_consumer({"name": "billing"}, actor=None, source="api")
    issue_key(consumer, actor=None, source="api")
    pair = issued(trustme.CA(), "api.example")
    certificate = save_certificate({"name": "api", "certificate": pair.chain, "key": pair.key}, actor=None,
                                   source="api")
    return World(route=Route.objects.get(), viewer=role_user("vera", "viewer"), other_user=other, consumer=consumer,
                 certificate=certificate, verdict=make_verdict())


@pytest.fixture
def route_doc():
    def make(**fields):
        return {"name": "users", "external_path": "/users/{id}", "methods": ["GET", "PUT"],
                "backends": [{"host": "http://10.0.0.5", "port": 8080}], **fields}
    return make


def readable_api(url: str) -> bool:
    view = resolve(url).func
    actions = getattr(view, "actions", None)
    return "get" in actions if actions is not None else hasattr(view.view_class, "get")


# A viewer's GET, by pattern: the first rule that matches decides.
VIEWER_READS: list[tuple[str, int | str]] = [
    (r"^admin/\w+/\w+/<path:object_id>/$", 302),  # the bare object URL redirects to its change page
    (r"^admin/(auth|authtoken)/", 403),  # user and token management: superusers only
    (r"/add/$", 403),
    (r"/delete/$", 403),
    (r"/purge-cache/$", 405),  # POST only
    (r"/advice/<str:advice_id>/apply/$", 405),  # POST only (and operators only)
    (r"/try/$", 403),  # the try-it panel shows transformed header values: operators only
    (r"/lift/$", 403),  # lifting a verdict: operators only
    (r"/keys/(issue|<int:key_id>/(rotate|revoke))/$", 403),  # issuing, rotating, revoking API keys: operators only
    (r"^admin/login/$", 302),  # already logged in: on to the index
    (r"^admin/logout/$", 405),  # POST only
    (r"^admin/autocomplete/$", 403),  # no field given to complete
    (r"^admin/r/", 404),  # routes have no public page to jump to
    (r"^admin/\(\?P<url>", 404),
    (r"^admin/routes/gatewaysettings/$", 302),  # one row: the list opens its page
    (r"^admin/", 200),
    (r"^api/", "read"),
    (r"^metrics$", 200),
]
# Admin pages whose POST would write: a viewer's is refused outright.
VIEWER_WRITES = re.compile(r"^admin/.*/(add|change|delete|purge-cache|lift)/$")
# Parameters a read needs to be a valid request.
READ_QUERIES = {"/api/metrics/history/": "?name=requests"}


def expected_viewer_read(pattern: str, url: str) -> set[int]:
    for rule, status in VIEWER_READS:
        if re.search(rule, pattern):
            if status == "read":
                # An endpoint without GET: 405, or 403 when its permission is checked before the method.
                return {200} if readable_api(url) else {403, 405}
            return {int(status)}
    raise AssertionError(f"no rule says what a viewer's GET of {pattern} should answer")


def test_every_pattern_has_an_expectation():
    for pattern in PATTERNS:
        assert any(re.search(rule, pattern) for rule, _ in VIEWER_READS), pattern


def test_the_walk_sees_the_admin_the_api_and_the_metrics():
    assert {"admin/", "admin/routes/route/<path:object_id>/change/", "api/^audit/$", "metrics"} <= set(PATTERNS)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_an_anonymous_caller_is_sent_to_the_login_page_or_refused(client, world, pattern):
    url = world.url(pattern)
    for method in ("get", "post"):
        response = getattr(client, method)(url)
        if pattern in ("admin/login/", "admin/logout/"):
            assert response.status_code in (200, 302)  # logging in and out need no login
        elif pattern.startswith("admin/"):
            assert response.status_code == 302, (method, url)
            assert response["Location"].startswith("/admin/login/?next="), (method, url)
        elif pattern.startswith("api/"):
            assert response.status_code in (401, 403), (method, url)
        else:  # /metrics: open to scrapers by default (RUSTA_METRICS_TOKEN closes it)
            assert response.status_code == (200 if method == "get" else 405)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_viewer_reads_what_a_viewer_may_read(client, world, pattern):
    client.login(username="vera", password=PASSWORD)
    url = world.url(pattern)
    response = client.get(url + READ_QUERIES.get(url, ""))
    assert response.status_code in expected_viewer_read(pattern, url), url


def snapshot_of_configuration() -> tuple:
    return (
        list(Route.objects.values_list("name", "enabled", "priority", "cors", "updated_at")),
        list(AuditEntry.objects.values_list("pk", flat=True)),
        list(BackendHealth.objects.values_list("override", flat=True)),
        list(RetentionPolicy.objects.values_list("keep_days", flat=True)),
        list(GatewaySettings.objects.values_list("cors", flat=True)),
    )


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_viewer_changes_nothing_anywhere(client, world, pattern):
    client.login(username="vera", password=PASSWORD)
    url = world.url(pattern)
    before = snapshot_of_configuration()
    # What a change form, a bulk action, the health override and the retention list would post.
    form = {"name": "changed", "enabled": "on", "_override": "down", "action": "delete_selected",
            "_selected_action": [str(world.route.pk)], "post": "yes", "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1", "form-0-id": str(RetentionPolicy.objects.first().pk),
            "form-0-keep_days": "1", "_save": "Save"}
    if pattern.startswith("api/"):
        for method in ("post", "put", "patch", "delete"):
            assert getattr(client, method)(url, {}, content_type="application/json").status_code == 403, (
                method, url)
    else:
        response = client.post(url, form)
        assert response.status_code < 500, url
        if VIEWER_WRITES.search(pattern):
            assert response.status_code == 403, url
    assert snapshot_of_configuration() == before
