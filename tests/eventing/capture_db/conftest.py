"""Fixtures of the database-capture tests: database mode on, functions dropped afterwards."""

from __future__ import annotations

import pytest

from eventing.capture import database as capture_db
from tests.faults.helpers import Cluster
from tests.processes import workers_parked


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
