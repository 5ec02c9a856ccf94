"""The default retention policy: raw points 1 day, 1 min 7 days, 5 min 30 days, 1 h a year, 1 d forever."""

from django.db import migrations

DEFAULTS = {"10s": 1, "1m": 7, "5m": 30, "1h": 365, "1d": None}


def create_defaults(apps, schema_editor):
    RetentionPolicy = apps.get_model("metrics", "RetentionPolicy")
    for resolution, days in DEFAULTS.items():
        RetentionPolicy.objects.get_or_create(resolution=resolution, defaults={"keep_days": days})


class Migration(migrations.Migration):

    dependencies = [("metrics", "0002_timeseries")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
