"""API throttles count in a cache every web process shares; a process-local one is warned."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from eventing import checks
from tests.processes import ROOT

RATE = "3/min"
# A project nobody serves: the throttle counts the request, then the view answers 404 without
# touching the database, so a second process needs nothing but the settings and the cache.
WRONG_PROJECT_QUEUE = "/v1/api/nobody/eventing/queue"
LOCMEM = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A second web process: the same settings, its own cache client, N requests; prints the codes.
WEB_PROCESS = """
import json, os, sys
import django
from django.conf import settings
settings.CACHES = json.loads(os.environ["SHARED_CACHES"])
settings.ALLOWED_HOSTS = ["testserver"]
settings.DATABASES["default"]["NAME"] = os.environ["SHARED_DATABASE_NAME"]
settings.EVENTING = {**settings.EVENTING, "THROTTLE_RATES": {"eventing_queue": sys.argv[1]}}
django.setup()
from rest_framework.test import APIClient
client = APIClient()
codes = [client.post(sys.argv[2], {}, format="json").status_code for _ in range(int(sys.argv[3]))]
print(json.dumps(codes))
"""


def another_process(count: int) -> list[int]:
    """`count` queue requests from a separate Python process, with this process's cache."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "SHARED_CACHES": json.dumps(django_settings.CACHES),
        "SHARED_DATABASE_NAME": str(connection.settings_dict["NAME"]),
    }
    done = subprocess.run(
        [sys.executable, "-c", WEB_PROCESS, RATE, WRONG_PROJECT_QUEUE, str(count)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.django_db(transaction=True)
def test_two_web_processes_share_one_limit():
    """Attack: with two gunicorn workers, 8 of 8 requests passed a 5/min limit (each process
    counted in its own memory).

    Now the standalone project's cache (Redis, else the database) is shared: three requests
    from one process spend the limit for the other as well.
    """
    assert django_settings.CACHES["default"]["BACKEND"] in (
        "django.core.cache.backends.redis.RedisCache",
        "django.core.cache.backends.db.DatabaseCache",
    )
    caches["default"].clear()
    with override_settings(
        EVENTING={**django_settings.EVENTING, "THROTTLE_RATES": {"eventing_queue": RATE}}
    ):
        first = another_process(3)
        here = APIClient().post(WRONG_PROJECT_QUEUE, {}, format="json").status_code
        second = another_process(1)
    caches["default"].clear()
    assert first == [404, 404, 404]
    assert (here, second) == (429, [429])


def test_a_process_local_throttle_cache_is_warned():
    """A rate set while the throttle cache is local memory: eventing.W008 says so."""
    rates = {"eventing_queue": "5/min"}
    with override_settings(
        CACHES=LOCMEM, EVENTING={**django_settings.EVENTING, "THROTTLE_RATES": rates}
    ):
        [warning] = checks.check_throttle_cache()
    assert warning.id == "eventing.W008"
    assert "LocMemCache, local to each process" in warning.msg


@pytest.mark.parametrize(
    ("caches_setting", "rates", "warned"),
    [
        (None, {"eventing_queue": "5/min"}, False),  # the project's shared cache
        (LOCMEM, {"eventing_queue": None, "eventing": None}, False),  # nothing throttled
        ({}, {"eventing": "5/min"}, True),  # the alias is missing altogether
    ],
)
def test_the_throttle_cache_check(caches_setting, rates, warned):
    extra = {} if caches_setting is None else {"CACHES": caches_setting}
    with override_settings(**extra, EVENTING={**django_settings.EVENTING, "THROTTLE_RATES": rates}):
        assert bool(checks.check_throttle_cache()) == warned


def project_cache(broker_url: str) -> dict:
    """The standalone project's default cache, read in a fresh process with this broker URL."""
    env = {**os.environ, "CELERY_BROKER_URL": broker_url, "DJANGO_SETTINGS_MODULE": ""}
    env.pop("CACHE_URL", None)
    code = "import json; import config.settings as s; print(json.dumps(s.CACHES['default']))"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_standalone_project_uses_the_database_cache_without_redis():
    """Without Redis the standalone project's cache is the database (createcachetable)."""
    assert project_cache("filesystem://") == {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": "eventing_cache",
    }
    # The broker's server, not its database: clearing the cache never drops queued messages.
    assert project_cache("redis://127.0.0.1:6390/0")["LOCATION"] == "redis://127.0.0.1:6390/1"
