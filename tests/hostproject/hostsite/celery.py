"""The host project's Celery app (Celery's standard Django setup; nothing Eventing-specific)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hostsite.settings")

app = Celery("hostsite")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Finds eventing.tasks (eventing.deliver, eventing.sweep, eventing.cleanup) like any app's tasks.
app.autodiscover_tasks()
