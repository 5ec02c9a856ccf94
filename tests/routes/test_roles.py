"""The roles: groups made by the migration, what each role may do, staff without a role, the admin's rights."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from routes import services
from routes.models import Route
from routes.roles import OPERATORS, VIEWERS, role_of, sync_role_groups
from tests.support.users import PASSWORD, role_user

pytestmark = pytest.mark.django_db


def codenames(group_name: str) -> set[str]:
    return set(Group.objects.get(name=group_name).permissions.values_list("codename", flat=True))


def test_the_viewer_group_can_only_view():
    granted = codenames(VIEWERS)
    assert {"view_route", "view_backend", "view_auditentry", "view_backendhealth"} <= granted
    assert all(codename.startswith("view_") for codename in granted)


def test_the_operator_group_can_change_the_configuration_but_not_the_audit_trail():
    granted = codenames(OPERATORS)
    assert {"add_route", "change_route", "delete_route", "change_backend", "change_backendhealth",
            "change_retentionpolicy", "view_auditentry"} <= granted
    assert not granted & {"add_auditentry", "change_auditentry", "delete_auditentry"}


def test_neither_group_can_manage_users():
    assert not (codenames(VIEWERS) | codenames(OPERATORS)) & {"add_user", "change_user", "change_group"}


def test_syncing_again_changes_nothing():
    before = (codenames(VIEWERS), codenames(OPERATORS))
    sync_role_groups()
    assert (codenames(VIEWERS), codenames(OPERATORS)) == before
    assert Group.objects.filter(name__in=[VIEWERS, OPERATORS]).count() == 2


@pytest.mark.parametrize(("role", "expected"), [
    ("viewer", "viewer"), ("operator", "operator"), ("superuser", "superuser"), (None, "viewer"),
])
def test_each_user_has_the_role_of_their_group_and_staff_without_one_are_viewers(role, expected):
    assert role_of(role_user("u", role)) == expected


def test_users_who_are_not_staff_or_not_active_have_no_role():
    assert role_of(role_user("u", "operator", is_active=False)) is None
    user = role_user("w", "operator")
    user.is_staff = False
    user.save()
    assert role_of(user) is None


def test_a_staff_user_in_another_group_only_is_still_a_viewer():
    user = role_user("u", None)
    user.groups.add(Group.objects.create(name="Editors"))
    assert role_of(user) == "viewer"


@pytest.fixture
def route(route_doc) -> Route:
    return services.save_route(route_doc(), actor=None, source="api")


def logged_in(client, role):
    user = role_user("someone", role)
    client.login(username=user.username, password=PASSWORD)
    return client


def test_a_viewer_sees_a_route_in_the_admin_but_cannot_change_it(client, route):
    client = logged_in(client, "viewer")
    page = client.get(f"/admin/routes/route/{route.pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(f"/admin/routes/route/{route.pk}/change/", {"name": "x"}).status_code == 403
    assert client.get("/admin/routes/route/add/").status_code == 403
    assert client.post(f"/admin/routes/route/{route.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Route.objects.get().name == "users"


def test_an_operator_may_open_the_add_page(client):
    assert logged_in(client, "operator").get("/admin/routes/route/add/").status_code == 200


def test_staff_without_a_role_see_the_configuration_in_the_admin(client, route):
    client = logged_in(client, None)
    assert client.get("/admin/routes/route/").status_code == 200
    assert client.get("/admin/routes/route/add/").status_code == 403


def test_a_viewer_cannot_open_user_management(client):
    assert logged_in(client, "viewer").get("/admin/auth/user/").status_code == 403


def test_a_viewer_sees_secrets_redacted_on_the_read_only_route_page(client, route_doc):
    route = services.save_route(route_doc(request_transformation={
        "headers": [{"action": "set", "name": "Authorization", "value": "Bearer s3cr3t-upstream"}]}),
        actor=None, source="api")
    page = logged_in(client, "viewer").get(f"/admin/routes/route/{route.pk}/change/")
    assert page.status_code == 200
    assert b"s3cr3t-upstream" not in page.content
    assert b"&lt;redacted&gt;" in page.content
