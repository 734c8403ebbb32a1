"""Test settings: the standalone project plus a test app, with short timings."""

import os

os.environ.setdefault("EVENTING_SECRETS", "test-secret-0123456789abcdef0123456789abcdef")
os.environ.setdefault("EVENTING_CLIENT_SECRETS", "test-client-secret-0123456789abcdef01234567")

# Under `pytest -n N` each worker gets its own broker, cache and var folder: before the
# project's settings read them from the environment.
from tests.support.isolation import isolate_xdist_worker  # noqa: E402

isolate_xdist_worker()

import dj_database_url  # noqa: E402
from django.conf import global_settings  # noqa: E402

from config.settings import *  # noqa: E402,F403
from config.settings import DATABASES, EVENTING, INSTALLED_APPS, VAR_DIR  # noqa: E402

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so Celery worker processes see the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-db.sqlite3")}

EVENTING.update(
    {
        "ALLOWED_NETWORKS": ["127.0.0.0/8"],
        # Short, so crash tests see a lost lease soon; a test where no process dies may give
        # its processes production's grace (a starved worker keeps its rows).
        "LEASE_GRACE_S": float(os.environ.get("EVENTING_TEST_LEASE_GRACE_S", "3")),
        "SWEEP_INTERVAL_S": 0.5,
        "TRIGGER_CACHE_TTL_S": 0.2,
        # An open circuit probes within the tests' patience (workers read these too).
        "CIRCUIT_PROBE_FIRST_S": 0.5,
        "CIRCUIT_PROBE_MAX_S": 2,
        "ETA_HORIZON_S": float(os.environ.get("EVENTING_TEST_ETA_HORIZON_S", "300")),
    }
)
# A second database (`python -m tests.stack postgres` creates it on the same server) for the
# tests of a separate events database: tests/e2e/eventing/test_events_database.py. Their worker
# processes get the test database's URL here, and EVENTING_TEST_DATABASE=events.
if os.environ.get("EVENTING_TEST_EVENTS_DATABASE_URL"):
    DATABASES["events"] = dj_database_url.parse(
        os.environ["EVENTING_TEST_EVENTS_DATABASE_URL"], conn_max_age=60, conn_health_checks=True
    )
if os.environ.get("EVENTING_TEST_DATABASE"):
    EVENTING["DATABASE"] = os.environ["EVENTING_TEST_DATABASE"]
# Child processes of the database-capture tests run in the mode a test gives them.
if os.environ.get("EVENTING_TEST_CAPTURE"):
    EVENTING["CAPTURE"] = os.environ["EVENTING_TEST_CAPTURE"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Storages for the file-event tests. "default" and "staticfiles" stay Django's own; the wrapped
# aliases live beside them. Files go under var/ so worker processes (the sweeper) see them.
TEST_MEDIA_ROOT = VAR_DIR / "test-media"
STORAGES = {
    **global_settings.STORAGES,
    "plain_files": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(TEST_MEDIA_ROOT / "files"), "base_url": "/media/files/"},
    },
    "evented_files": {
        "BACKEND": "eventing.storage.EventingStorage",
        "OPTIONS": {"wraps": "plain_files"},
    },
    "evented_memory": {
        "BACKEND": "eventing.storage.EventingStorage",
        "OPTIONS": {
            "backend": "django.core.files.storage.InMemoryStorage",
            "options": {"base_url": "/media/memory/"},
        },
    },
}
