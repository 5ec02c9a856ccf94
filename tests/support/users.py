"""Users of each management role for the tests: viewer, operator, superuser, or staff without a role."""
from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from routes.roles import OPERATORS, VIEWERS

PASSWORD = "a-long-test-password-1"


def role_user(username: str, role: str | None, **fields: Any) -> Any:
    """A staff user in the role's group ("viewer", "operator"), a superuser ("superuser"), or staff with no
    group (None). The groups come from the data migration."""
    user = get_user_model().objects.create_user(username, f"{username}@example.com", PASSWORD, is_staff=True,
                                                is_superuser=role == "superuser", **fields)
    group = {"viewer": VIEWERS, "operator": OPERATORS}.get(role or "")
    if group:
        user.groups.add(Group.objects.get(name=group))
    return user


def api_client_of(role: str) -> Any:
    """A DRF APIClient signed in as a new user of `role` (named after it)."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(role_user(role, role))
    return client
