"""The Celery app. Production runs `celery -A studio worker` and `celery -A studio beat`;
embedded mode runs both inside `manage.py runstudio`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studio.settings")

app = Celery("studio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
