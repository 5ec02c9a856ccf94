"""The management plane's roles: viewer (reads), operator (changes the configuration), superuser (everything,
secrets included). Roles are Django groups carrying model permissions, so the admin and the API agree.

- "Rusta viewers": every `view_` permission of the routes and metrics apps.
- "Rusta operators": every permission of those apps except changing the audit trail.
- Superusers: everything; only they may export secrets and manage users.
- Staff users in neither group are viewers (RoleBackend adds the viewer permissions): an account made staff
  without a role can look but not change anything, and never sees less than the admin's index.

Everyone needs `is_staff` and `is_active` to use the admin or the API at all. The two groups' permissions are
Rusta's to define: a data migration creates them and every `migrate` puts them back in step (so models added
later are covered); make other groups for other mixes.
"""
from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.contrib.auth.backends import ModelBackend

VIEWERS = "Rusta viewers"
OPERATORS = "Rusta operators"
ROLE_GROUPS = (VIEWERS, OPERATORS)
ROLE_APPS = ("routes", "metrics")
# Nobody edits the trail: not in the admin (read-only there), not through the API (read-only there).
NEVER_GRANTED = frozenset({"add_auditentry", "change_auditentry", "delete_auditentry"})
READ = "routes.view_route"
WRITE = "routes.change_route"


def role_of(user: Any) -> str | None:
    """"superuser", "operator", "viewer", or None for users who may not use the management plane."""
    if not (user and user.is_authenticated and user.is_active and user.is_staff):
        return None
    if user.is_superuser:
        return "superuser"
    if user.has_perm(WRITE):
        return "operator"
    if user.has_perm(READ):
        return "viewer"
    return None


def viewer_permissions() -> frozenset[str]:
    """`app.view_model` for every model of the role apps, from the app registry (no query)."""
    return frozenset(
        f"{model._meta.app_label}.view_{model._meta.model_name}"
        for label in ROLE_APPS for model in global_apps.get_app_config(label).get_models()
    )


class RoleBackend(ModelBackend):
    """Django's ModelBackend, plus the viewer role's permissions for active staff users without a Rusta group."""

    def get_group_permissions(self, user_obj: Any, obj: Any = None) -> set[str]:
        perms: set[str] = super().get_group_permissions(user_obj, obj)
        if obj is not None or not user_obj.is_active or not user_obj.is_staff or user_obj.is_superuser:
            return perms
        if not user_obj.groups.filter(name__in=ROLE_GROUPS).exists():
            perms = perms | viewer_permissions()
        return perms


def sync_role_groups(apps: Any = global_apps, using: str = "default") -> None:
    """Create the two groups and give them exactly their role's permissions (idempotent)."""
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    found = list(permission_model.objects.using(using).filter(content_type__app_label__in=ROLE_APPS)
                 .values_list("pk", "codename"))
    viewer = [pk for pk, codename in found if codename.startswith("view_")]
    operator = [pk for pk, codename in found if codename not in NEVER_GRANTED]
    for name, granted in ((VIEWERS, viewer), (OPERATORS, operator)):
        group, _ = group_model.objects.using(using).get_or_create(name=name)
        group.permissions.set(granted)


def create_role_permissions(apps: Any = global_apps, using: str = "default") -> None:
    """Make sure the role apps' permission rows exist (Django creates them only after all migrations ran)."""
    from django.contrib.auth.management import create_permissions

    for label in ROLE_APPS:
        # The installed app config (it has a models module, which historical ones lack); the rows are made
        # with `apps`, the models as the migrations left them.
        create_permissions(global_apps.get_app_config(label), verbosity=0, using=using, apps=apps)


def on_post_migrate(sender: Any, using: str = "default", apps: Any = global_apps, **kwargs: Any) -> None:
    """After `migrate` (and after the test runner's flush): the groups, in step with today's models."""
    create_role_permissions(apps, using)
    sync_role_groups(apps, using)
