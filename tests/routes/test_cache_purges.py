"""Cache purges from the control plane: the service (audited, announced), its delivery to a gateway process's
cache through the table watcher's poll, the API endpoint (operators only) and the admin's action and button."""
from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.urls import reverse
from rest_framework.test import APIClient

from routes import cache_purges, services
from routes.models import AuditEntry, CachePurge, ConfigState
from routes.snapshot import current_versions
from tests.routes.conftest import PASSWORD

pytestmark = pytest.mark.django_db
PURGE_URL = "/api/cache/purge/"


class RecordingCache:
    def __init__(self) -> None:
        self.purges: list[tuple[str | None, str | None]] = []

    def post_purge(self, route: str | None = None, url: str | None = None) -> None:
        self.purges.append((route, url))


@pytest.fixture
def users_route(route_doc):
    return services.save_route(route_doc(cache={"ttl_s": 60}), actor=None, source="api")


def test_a_purge_is_recorded_audited_and_announced(staff_user, users_route):
    purge = cache_purges.request_purge(route="users", key="GET example.com/v1/users/7?b=2&a=1", actor=staff_user,
                                       source="api")
    assert (purge.route, purge.key, purge.requested_by) == ("users", "GET example.com/v1/users/7?a=1&b=2", "alice")
    assert ConfigState.objects.get(pk=1).cache_purge_id == purge.pk
    entry = AuditEntry.objects.get(action="purge")
    assert (entry.actor_name, entry.source, entry.object_type) == ("alice", "api", "cache")


def test_an_unknown_route_or_an_empty_key_is_refused(staff_user):
    with pytest.raises(services.ConfigError) as caught:
        cache_purges.request_purge(route="nope", key=" ", actor=staff_user, source="api")
    assert set(caught.value.errors) == {"route", "key"}
    assert not CachePurge.objects.exists()


def test_a_process_applies_each_new_purge_once_and_skips_older_ones(staff_user, users_route):
    cache_purges.request_purge(actor=staff_user, source="api")  # before the process started
    cache = RecordingCache()
    follower = cache_purges.PurgeFollower(cache)
    assert follower.follow(current_versions().cache_purge) == 0
    cache_purges.request_purge(route="users", actor=staff_user, source="api")
    cache_purges.request_purge(key="example.com/x", actor=staff_user, source="api")
    assert follower.follow(current_versions().cache_purge) == 2
    assert follower.follow(current_versions().cache_purge) == 0
    assert cache.purges == [("users", None), (None, "GET example.com/x")]


def test_the_api_purges_all_a_route_or_a_key(api, users_route):
    assert api.post(PURGE_URL, {}, format="json").status_code == 202
    reply = api.post(PURGE_URL, {"route": "users"}, format="json")
    assert reply.status_code == 202 and reply.json()["route"] == "users"
    reply = api.post(PURGE_URL, {"key": "https://example.com/v1/users/7"}, format="json")
    assert reply.json() == {"id": reply.json()["id"], "route": None, "key": "GET example.com/v1/users/7"}
    assert CachePurge.objects.count() == 3


def test_the_api_answers_field_errors(api):
    reply = api.post(PURGE_URL, {"route": "ghost", "colour": "red"}, format="json")
    assert reply.status_code == 400 and set(reply.json()["errors"]) == {"colour"}
    reply = api.post(PURGE_URL, {"route": "ghost"}, format="json")
    assert reply.status_code == 400 and reply.json()["errors"] == {"route": ["No route is named 'ghost'."]}


def test_staff_without_permission_to_change_routes_cannot_purge(db):
    viewer = get_user_model().objects.create_user("vera", password=PASSWORD, is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_route"))
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.post(PURGE_URL, {}, format="json").status_code == 403
    anonymous = APIClient()
    assert anonymous.post(PURGE_URL, {}, format="json").status_code in (401, 403)
    assert not CachePurge.objects.exists()


def test_the_admin_action_purges_the_selected_routes(client, staff_user, users_route):
    assert client.login(username="alice", password=PASSWORD)
    response = client.post(reverse("admin:routes_route_changelist"),
                           {"action": "purge_cache", "_selected_action": [users_route.pk]}, follow=True)
    assert "will be dropped by every gateway" in response.content.decode()
    assert list(CachePurge.objects.values_list("route", flat=True)) == ["users"]


def test_the_route_page_has_a_purge_button_that_purges_it(client, staff_user, users_route):
    assert client.login(username="alice", password=PASSWORD)
    page = client.get(reverse("admin:routes_route_change", args=[users_route.pk])).content.decode()
    purge_url = reverse("admin:routes_route_purge_cache", args=[users_route.pk])
    assert purge_url in page
    assert client.get(purge_url).status_code == 405
    assert client.post(purge_url).status_code == 302
    assert CachePurge.objects.get().route == "users"
