"""Backend health comes over from the metrics app with its rows: BackendHealth, HealthEvent and HealthProbe.

First the models enter this app's state on their old tables (no database change), then the tables are renamed in
place to routes_* (rows, indexes and foreign keys kept), and the content types follow, so that the permissions
granted on them (groups, users) and the admin's history keep pointing at the same rows.
"""
from __future__ import annotations

from typing import Any

from django.db import migrations, models
from django.db.models.deletion import CASCADE

MOVED = ("backendhealth", "healthevent", "healthprobe")
# The fields as metrics 0001_initial made them.
STATES = [('healthy', 'Healthy'), ('unhealthy', 'Unhealthy'), ('unknown', 'Unknown')]
OVERRIDES = [('none', 'None'), ('up', 'Forced up'), ('down', 'Forced down')]
SOURCES = [('probe', 'Probe'), ('override', 'Override'), ('reset', 'Check removed')]
REASONS = [('status', 'Status'), ('timeout', 'Timeout'), ('refused', 'Connection refused'),
           ('reset', 'Connection reset'), ('invalid', 'Invalid response'), ('error', 'Error')]


def big_id() -> models.BigAutoField:
    return models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')


def backend(related_name: str) -> models.ForeignKey:
    return models.ForeignKey(on_delete=CASCADE, related_name=related_name, to='routes.backend')


def move_content_types(source: str, target: str) -> Any:
    def move(apps: Any, schema_editor: Any) -> None:
        content_types = apps.get_model("contenttypes", "ContentType").objects.using(schema_editor.connection.alias)
        for model in MOVED:
            # A content type already under the target (a database where Django made one) is left as it is.
            if not content_types.filter(app_label=target, model=model).exists():
                content_types.filter(app_label=source, model=model).update(app_label=target)

    return move


class Migration(migrations.Migration):

    dependencies = [
        ("routes", "0007_configstate_background_ran_at"),
        ("metrics", "0004_backend_health_to_routes"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='BackendHealth',
                    fields=[
                        ('backend', models.OneToOneField(on_delete=CASCADE, primary_key=True, related_name='health',
                                                      serialize=False, to='routes.backend')),
                        ('state', models.CharField(choices=STATES, default='unknown', max_length=16)),
                        ('reason', models.CharField(blank=True, default='', max_length=200)),
                        ('consecutive_successes', models.PositiveIntegerField(default=0)),
                        ('consecutive_failures', models.PositiveIntegerField(default=0)),
                        ('last_probe_at', models.DateTimeField(blank=True, help_text='When the latest probe started.',
                                                             null=True)),
                        ('last_change_at', models.DateTimeField(blank=True, help_text='When the state last changed.',
                                                              null=True)),
                        ('override', models.CharField(choices=OVERRIDES, default='none', max_length=8)),
                        ('override_by', models.CharField(blank=True, default='', max_length=150)),
                        ('override_at', models.DateTimeField(blank=True, null=True)),
                    ],
                    options={
                        'verbose_name': 'backend health',
                        'verbose_name_plural': 'backend health',
                        'ordering': ['backend_id'],
                        'db_table': 'metrics_backendhealth',
                    },
                ),
                migrations.CreateModel(
                    name='HealthEvent',
                    fields=[
                        ('id', big_id()),
                        ('at', models.DateTimeField()),
                        ('source', models.CharField(choices=SOURCES, max_length=16)),
                        ('from_state', models.CharField(max_length=16)),
                        ('to_state', models.CharField(max_length=16)),
                        ('reason', models.CharField(blank=True, default='', max_length=200)),
                        ('actor_name', models.CharField(blank=True, default='', max_length=150)),
                        ('backend', backend('health_events')),
                    ],
                    options={
                        'ordering': ['-at', '-id'],
                        'indexes': [models.Index(fields=['backend', '-id'], name='healthevent_backend_latest')],
                        'db_table': 'metrics_healthevent',
                    },
                ),
                migrations.CreateModel(
                    name='HealthProbe',
                    fields=[
                        ('id', big_id()),
                        ('at', models.DateTimeField(help_text='When the probe started.')),
                        ('ok', models.BooleanField()),
                        ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                        ('latency_ms', models.FloatField(blank=True, null=True)),
                        ('reason', models.CharField(choices=REASONS, max_length=16)),
                        ('detail', models.CharField(blank=True, default='', max_length=200)),
                        ('backend', backend('health_probes')),
                    ],
                    options={
                        'ordering': ['-at', '-id'],
                        'indexes': [models.Index(fields=['backend', '-id'], name='healthprobe_backend_latest')],
                        'db_table': 'metrics_healthprobe',
                    },
                ),
            ],
            database_operations=[],
        ),
        # None: the app's default name (routes_backendhealth...), renamed in place.
        migrations.AlterModelTable(name='BackendHealth', table=None),
        migrations.AlterModelTable(name='HealthEvent', table=None),
        migrations.AlterModelTable(name='HealthProbe', table=None),
        migrations.RunPython(move_content_types("metrics", "routes"), move_content_types("routes", "metrics")),
    ]
