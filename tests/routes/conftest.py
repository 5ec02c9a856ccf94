"""Fixtures of the control-plane tests: users, API clients, route documents, routes with health checks."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from routes.models import Backend, Route
from routes.services import save_route

PASSWORD = "a-long-test-password-1"



@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # The default hasher is slow on purpose; these tests create a user each.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def staff_user(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD, is_staff=True,
                                                is_superuser=True)


@pytest.fixture
def plain_user(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def api(staff_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(staff_user)
    return client


@pytest.fixture
def route_doc() -> Callable[..., dict[str, Any]]:
    """A valid route document; keyword arguments replace its fields."""

    def make(**fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": "users",
            "external_path": "/users/{id}",
            "internal_path": "/v1/users/{id}",
            "methods": ["GET", "PUT"],
            "backends": [{"host": "http://10.0.0.5", "port": 8080, "weight": 2},
                         {"host": "http://10.0.0.6", "port": 8080}],
        }
        if "external_path" in fields:
            doc["internal_path"] = ""  # the default template uses {id}
        doc.update(fields)
        return doc

    return make


@pytest.fixture
def viewer(db):
    from tests.support.users import role_user

    return role_user("vera", "viewer")


@pytest.fixture
def operator(db):
    from tests.support.users import role_user

    return role_user("otto", "operator")


@pytest.fixture
def viewer_api(viewer) -> APIClient:
    client = APIClient()
    client.force_authenticate(viewer)
    return client


@pytest.fixture
def operator_api(operator) -> APIClient:
    client = APIClient()
    client.force_authenticate(operator)
    return client


@pytest.fixture
def checked_route() -> Callable[..., Route]:
    """A route with one backend per port, each probed at `path`; keyword arguments replace the health check."""

    def make(*ports: int, path: str = "/health", name: str = "checked", **health_check: Any) -> Route:
        # A probe's time limit well above what a busy CI machine needs to answer on loopback: a test about
        # status codes must not see a timeout instead (the hung-backend test sets its own short limit).
        check = {"interval_s": 1, "timeout_ms": 2000, "healthy_threshold": 2, "unhealthy_threshold": 2,
                 **health_check}
        return save_route({
            "name": name, "external_path": f"/{name}", "methods": ["GET"], "health_check": check,
            "backends": [{"host": "http://127.0.0.1", "port": port, "health_check_path": path} for port in ports],
        }, actor=None, source="test")

    return make


def only_backend(route: Route) -> Backend:
    return route.backends.get()
