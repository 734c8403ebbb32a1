"""Fixtures of the database-capture tests: database mode on, functions dropped afterwards."""

from __future__ import annotations

import pytest

from eventing.capture import database as capture_db


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
