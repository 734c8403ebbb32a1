"""EVENTING["CAPTURE"] where database capture cannot serve: a check error, signals carry on."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db import connections

from eventing import checks
from eventing.capture import database as capture_db
from tests.factories import TriggerFactory
from tests.support.capture_db import payloads
from tests.testapp.models import Order

pytestmark = pytest.mark.django_db


@pytest.fixture
def not_postgres(monkeypatch):
    """The events database as a SQLite one looks (on the SQLite stack it is one)."""
    monkeypatch.setattr(connections["default"], "vendor", "sqlite")


def test_an_unknown_mode_is_a_check_error(settings):
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "trigger"}
    (error,) = checks.check_settings()
    assert error.id == "eventing.E009"
    assert "'trigger'" in error.msg
    assert checks.check_capture_mode() == []  # said once, by the settings check


def test_database_mode_off_postgresql_is_a_check_error_and_signals_carry_on(settings, not_postgres):
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "database"}
    (error,) = checks.check_capture_mode()
    assert error.id == "eventing.E009"
    assert "needs PostgreSQL" in error.msg
    assert not capture_db.database_capture()
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    Order.objects.create(status="still captured")
    (data,) = payloads("DB_INSERT")
    assert data["new"]["status"] == "still captured"
    with pytest.raises(CommandError, match="needs PostgreSQL"):
        call_command("eventing_capture", "status")


def test_signal_mode_is_not_a_check_error(settings):
    settings.EVENTING = {**settings.EVENTING, "CAPTURE": "signals"}
    assert checks.check_capture_mode() == []
