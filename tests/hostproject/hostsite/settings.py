"""Settings of the host project: a plain Django site that adds Eventing."""

import os
from pathlib import Path

from eventing.dispatch.beat import beat_schedule  # Eventing: its periodic tasks

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("HOST_DATA_DIR", BASE_DIR / "data"))
DATA_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = "host-project-test-key"
DEBUG = True
ALLOWED_HOSTS = ["*"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "library",
    # Eventing: the three apps, and DRF for the HTTP API.
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "triggers",
    "eventing",
    "mission_control",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "hostsite.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": DATA_DIR / "host.sqlite3",
        # Eventing: web and worker share the file (see docs/integration.md, SQLite).
        "OPTIONS": {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}

# Eventing: one settings dict (docs/configuration.md).
EVENTING = {
    "SECRETS": [os.environ.get("HOST_EVENTING_SECRET", "host-secret-0123456789abcdef0123456789")],
    "INSTANCE_ID": "hostsite",
    # The test's receiver listens on loopback.
    "ALLOWED_NETWORKS": ["127.0.0.0/8"],
}
DATABASE_ROUTERS = ["eventing.router.EventingRouter"]  # Eventing: only needed off "default"

# Celery, with Eventing's recommended delivery settings (docs/integration.md).
BROKER_DIR = DATA_DIR / "broker"
for sub in ("queue", "processed"):
    (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
CELERY_BROKER_URL = "filesystem://"
CELERY_BROKER_TRANSPORT = "eventing.dispatch.broker:FilesystemTransport"  # Eventing: atomic writes
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "data_folder_in": str(BROKER_DIR / "queue"),
    "data_folder_out": str(BROKER_DIR / "queue"),
    "processed_folder": str(BROKER_DIR / "processed"),
    "store_processed": False,
}
CELERY_TASK_ACKS_LATE = True  # Eventing
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # Eventing
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {**beat_schedule()}  # Eventing: sweeper every SWEEP_INTERVAL_S, cleanup
