"""Fixtures of the database-capture tests: database mode on, functions dropped afterwards."""

from __future__ import annotations

import re

import pytest
from django.db import connections

from eventing.capture import database as capture_db
from tests.processes import workers_parked
from tests.support.faults import Cluster

READS_EVENTS = re.compile(r'\bFROM "event_logs"', re.IGNORECASE)


@pytest.fixture(autouse=True)
def expanded_before_reading(request):
    """In a test rolled back at its end, captures are expanded before each read of event_logs.

    After commit the listener expands what trigger functions captured; a test whose writes never
    commit has no listener that could see them, so its reads of event_logs expand them first, in
    the test's transaction, as the listener would have. Tests whose writes commit
    (`transactional_db`) rely on the listener and the sweeper themselves.
    """
    if "transactional_db" in request.fixturenames or "django_db_setup" not in request.fixturenames:
        yield
        return
    connection = connections["default"]
    expanding = []

    def wrapper(execute, sql, params, many, context):
        if not expanding and connection.vendor == "postgresql" and READS_EVENTS.search(sql):
            expanding.append(True)
            try:
                capture_db.expand_all()
            finally:
                expanding.clear()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield


@pytest.fixture
def database_mode(settings):
    """EVENTING["CAPTURE"] = "database" for the test (a rolled-back test's DDL goes with it)."""
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "database"}


@pytest.fixture
def committed_database_mode(transactional_db, settings):
    """Database mode for a test whose writes commit; its functions are dropped afterwards."""
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "database"}
    yield
    capture_db.drop()


@pytest.fixture
def cluster(committed_database_mode):
    """Celery processes of one test in database mode; any other running worker is parked so
    that only these publish and deliver."""
    with workers_parked():
        cluster = Cluster()
        yield cluster
        cluster.stop_all()
