"""The Celery application: background work over Redis when configured, else over a local-disk broker."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rusta.settings")

app = Celery("rusta")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
