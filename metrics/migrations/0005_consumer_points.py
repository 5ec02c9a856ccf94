"""Per-consumer traffic history: raw 10-second points and their rollups, beside the route and backend series."""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('metrics', '0004_backend_health_to_routes'),
    ]

    operations = [
        migrations.CreateModel(
            name='ConsumerRawPoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('start', models.DateTimeField()),
                ('consumer', models.CharField(max_length=100)),
                ('route', models.CharField(blank=True, default='', max_length=200)),
                ('count', models.BigIntegerField(default=0)),
                ('errors_4xx', models.BigIntegerField(default=0)),
                ('errors_5xx', models.BigIntegerField(default=0)),
                ('duration_sum', models.FloatField(default=0.0)),
                ('duration_min', models.FloatField(blank=True, null=True)),
                ('duration_max', models.FloatField(blank=True, null=True)),
                ('buckets', models.JSONField(default=list)),
                ('source', models.CharField(help_text='The gateway process, or `redis` for ingested points.', max_length=100)),
            ],
            options={
                'indexes': [models.Index(fields=['start'], name='consumer_rawpoint_start'), models.Index(fields=['consumer', 'start'], name='consumer_rawpoint_consumer')],
                'constraints': [models.UniqueConstraint(fields=('start', 'consumer', 'route', 'source'), name='consumer_rawpoint_one_row_per_writer', violation_error_message='One row per bucket, consumer, route and writer.')],
            },
        ),
        migrations.CreateModel(
            name='ConsumerRollupPoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('start', models.DateTimeField()),
                ('consumer', models.CharField(max_length=100)),
                ('route', models.CharField(blank=True, default='', max_length=200)),
                ('count', models.BigIntegerField(default=0)),
                ('errors_4xx', models.BigIntegerField(default=0)),
                ('errors_5xx', models.BigIntegerField(default=0)),
                ('duration_sum', models.FloatField(default=0.0)),
                ('duration_min', models.FloatField(blank=True, null=True)),
                ('duration_max', models.FloatField(blank=True, null=True)),
                ('buckets', models.JSONField(default=list)),
                ('resolution', models.CharField(choices=[('1m', '1 minute'), ('5m', '5 minutes'), ('1h', '1 hour'), ('1d', '1 day')], max_length=3)),
            ],
            options={
                'indexes': [models.Index(fields=['resolution', 'start'], name='consumer_rollup_resolution'), models.Index(fields=['resolution', 'consumer', 'start'], name='consumer_rollup_consumer')],
                'constraints': [models.UniqueConstraint(fields=('resolution', 'start', 'consumer', 'route'), name='consumer_rollup_one_row_per_bucket', violation_error_message='One row per resolution, bucket, consumer and route.')],
            },
        ),
    ]
