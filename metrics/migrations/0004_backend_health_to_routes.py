"""Backend health moves to the routes app (routes.health): forget its three models here, in the state only.

The tables and their rows stay; routes 0008_backend_health_from_metrics takes the models over and renames the
tables to routes_*.
"""
from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [("metrics", "0003_default_retention")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name="BackendHealth"),
                migrations.DeleteModel(name="HealthEvent"),
                migrations.DeleteModel(name="HealthProbe"),
            ],
            database_operations=[],
        ),
    ]
