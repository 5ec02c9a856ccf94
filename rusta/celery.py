"""The Celery application: background work over Redis when configured, else over a local-disk broker."""
from __future__ import annotations

import os
from pathlib import Path

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rusta.settings")

app = Celery("rusta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Beat keeps its schedule in VAR_DIR, which settings create only on the embedded default; with Redis (a worker
# or beat container) it may not exist yet, and beat would fail to open its schedule.
Path(app.conf.beat_schedule_filename).parent.mkdir(parents=True, exist_ok=True)
