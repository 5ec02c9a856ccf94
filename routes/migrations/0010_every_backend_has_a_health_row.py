"""Every backend gets its health row (unknown, no override), which the service layer now creates with the backend;
the admin's health list used to create the missing ones when it was opened."""
from __future__ import annotations

from typing import Any

from django.db import migrations


def add_missing_rows(apps: Any, schema_editor: Any) -> None:
    backend_model = apps.get_model("routes", "Backend")
    health_model = apps.get_model("routes", "BackendHealth")
    missing = backend_model.objects.filter(health__isnull=True).values_list("pk", flat=True)
    health_model.objects.bulk_create([health_model(backend_id=pk) for pk in missing], ignore_conflicts=True)


class Migration(migrations.Migration):
    dependencies = [("routes", "0009_help_from_route_schema")]

    operations = [migrations.RunPython(add_missing_rows, migrations.RunPython.noop)]
