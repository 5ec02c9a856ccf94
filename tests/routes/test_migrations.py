"""The migrations: backend health moves from metrics to routes with its rows and permissions, and none is missing."""
from __future__ import annotations

from datetime import UTC, datetime
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from routes.health.models import BackendHealth, HealthEvent, HealthProbe
from routes.models import Route

BEFORE_MOVE = [("metrics", "0003_default_retention"), ("routes", "0007_configstate_background_ran_at")]
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def migrate(targets: list[tuple[str, str]] | None = None):
    """Migrate the test database to `targets` (None: the latest migrations); returns the models as they are there."""
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    ContentType.objects.clear_cache()  # the content types' rows changed under Django's cache
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.fixture
def before_move():
    """The database as it was with backend health in the metrics app; put back to the latest migrations after."""
    apps = migrate(BEFORE_MOVE)
    yield apps
    migrate()


@pytest.mark.django_db(transaction=True)
def test_backend_health_keeps_its_rows_when_it_moves_to_routes(before_move):
    route = before_move.get_model("routes", "Route").objects.create(name="users", external_path="/users")
    backend = before_move.get_model("routes", "Backend").objects.create(route=route, host="10.0.0.5", port=8080)
    before_move.get_model("metrics", "BackendHealth").objects.create(
        backend=backend, state="unhealthy", reason="status 503", consecutive_failures=3, override="up",
        override_by="alice", override_at=AT, last_probe_at=AT)
    before_move.get_model("metrics", "HealthProbe").objects.create(
        backend=backend, at=AT, ok=False, status_code=503, latency_ms=1.5, reason="status")
    before_move.get_model("metrics", "HealthEvent").objects.create(
        backend=backend, at=AT, source="probe", from_state="healthy", to_state="unhealthy", reason="status 503")

    migrate()

    health = BackendHealth.objects.get(pk=backend.pk)
    assert (health.state, health.reason, health.consecutive_failures, health.override, health.override_by,
            health.override_at, health.effective) == ("unhealthy", "status 503", 3, "up", "alice", AT, True)
    assert [(p.text, p.latency_ms) for p in HealthProbe.objects.filter(backend_id=backend.pk)] == [("status 503", 1.5)]
    assert list(HealthEvent.objects.values_list("backend_id", "to_state", "reason")) == [
        (backend.pk, "unhealthy", "status 503")]


@pytest.mark.django_db(transaction=True)
def test_a_permission_granted_on_backend_health_is_kept_when_it_moves_to_routes(before_move):
    content_types = before_move.get_model("contenttypes", "ContentType")
    permissions = before_move.get_model("auth", "Permission")
    change = permissions.objects.get(codename="change_backendhealth",
                                     content_type=content_types.objects.get(app_label="metrics", model="backendhealth"))
    user = before_move.get_model("auth", "User").objects.create(username="otto", is_staff=True, is_active=True)
    user.user_permissions.add(change)

    migrate()

    assert get_user_model().objects.get(username="otto").has_perm("routes.change_backendhealth")
    assert not ContentType.objects.filter(app_label="metrics", model__in=["backendhealth", "healthprobe",
                                                                          "healthevent"]).exists()


@pytest.mark.django_db(transaction=True)
def test_rolling_the_move_back_returns_the_rows_to_metrics():
    route = Route.objects.create(name="users", external_path="/users")
    backend = route.backends.create(host="10.0.0.5", port=8080)
    BackendHealth.objects.update_or_create(backend=backend, defaults={"state": "unhealthy", "reason": "refused"})
    try:
        apps = migrate(BEFORE_MOVE)
        old = apps.get_model("metrics", "BackendHealth").objects.get(pk=backend.pk)
        assert (old.state, old.reason) == ("unhealthy", "refused")
    finally:
        migrate()
    assert BackendHealth.objects.get(pk=backend.pk).reason == "refused"


@pytest.mark.django_db
def test_the_models_and_the_migrations_agree():
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)  # exits with 1 when a migration is missing
    assert "No changes detected" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_backends_stored_before_health_rows_came_with_them_get_one():
    apps = migrate([("routes", "0009_help_from_route_schema")])
    try:
        route = apps.get_model("routes", "Route").objects.create(name="users", external_path="/users")
        backend_model = apps.get_model("routes", "Backend")
        probed = backend_model.objects.create(route=route, scheme="http", host="10.0.0.5", port=80)
        unprobed = backend_model.objects.create(route=route, scheme="http", host="10.0.0.6", port=80)
        apps.get_model("routes", "BackendHealth").objects.create(backend=probed, state="unhealthy", reason="refused")
    finally:
        migrate()
    assert dict(BackendHealth.objects.values_list("backend_id", "state")) == {probed.pk: "unhealthy",
                                                                                unprobed.pk: "unknown"}
