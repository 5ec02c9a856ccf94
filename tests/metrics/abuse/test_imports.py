"""scikit-learn is the detection's alone: the processes that serve (the gateway's ASGI apps, the admin, the API,
the task module Celery loads) never import it until a detection runs."""
from __future__ import annotations

import subprocess
import sys

from tests.support.gateway import ROOT

PROBE = """
import sys, django
django.setup()
import rusta.asgi, rusta.urls, metrics.admin, metrics.tasks, metrics.api.urls  # noqa
from django.contrib import admin
admin.autodiscover()
print("sklearn" in sys.modules)
"""


def test_serving_processes_do_not_import_scikit_learn():
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"DJANGO_SETTINGS_MODULE": "rusta.settings", "PATH": "/usr/bin:/bin",
                               "RUSTA_VAR_DIR": "/tmp/abuse-detect-imports", "RUSTA_SECRET_KEY": "x" * 50})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_detection_does():
    done = subprocess.run([sys.executable, "-c", "import django, sys; django.setup(); "
                           "import metrics.abuse.detection; print('sklearn' in sys.modules)"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={"DJANGO_SETTINGS_MODULE": "rusta.settings", "PATH": "/usr/bin:/bin",
                               "RUSTA_VAR_DIR": "/tmp/abuse-detect-imports", "RUSTA_SECRET_KEY": "x" * 50})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
