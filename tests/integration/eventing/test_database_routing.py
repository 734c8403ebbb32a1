"""Event queries run on EVENTING["DATABASE"] (read when they run); checks E007 and E008."""

from __future__ import annotations

import sqlite3

import pytest
from django.db import connections
from django.db.utils import ConnectionDoesNotExist

from eventing.checks import check_database_features, check_events_database
from eventing.conf import DEFAULTS
from eventing.conf import settings as conf
from eventing.models import EventLog
from tests.factories import TriggerFactory
from triggers import database
from triggers.models import Trigger


class CatchAllRouter:
    """A router that answers for every model, as a read-replica router often does."""

    def db_for_read(self, model, **hints):
        return "elsewhere"

    db_for_write = db_for_read


CATCH_ALL_FIRST = [
    "tests.integration.eventing.test_database_routing.CatchAllRouter",
    "eventing.router.EventingRouter",
]


def separate(settings, alias: str = "nowhere") -> None:
    """Point EVENTING["DATABASE"] at `alias` (one not in DATABASES unless said otherwise)."""
    settings.EVENTING = {**settings.EVENTING, "DATABASE": alias}


def test_triggers_reads_the_same_alias_as_eventing(settings):
    settings.EVENTING = {k: v for k, v in settings.EVENTING.items() if k != "DATABASE"}
    assert database.events_database() == conf.DATABASE == DEFAULTS["DATABASE"]
    separate(settings, "events")
    assert database.events_database() == conf.DATABASE == "events"


@pytest.mark.django_db
def test_a_queryset_runs_where_the_setting_says_when_it_runs(settings):
    events = EventLog.objects.all()  # built early, as a view's `queryset` attribute is
    separate(settings)
    with pytest.raises(ConnectionDoesNotExist, match="nowhere"):
        list(events)
    assert list(events.using("default")) == []  # an explicit alias still wins


@pytest.mark.django_db
def test_an_earlier_router_cannot_send_event_queries_elsewhere(settings):
    settings.DATABASE_ROUTERS = CATCH_ALL_FIRST
    trigger = TriggerFactory(name="kept")
    assert Trigger.objects.get().name == "kept"
    assert Trigger.objects.filter(pk=trigger.pk).update(enabled=False) == 1
    assert EventLog.objects.count() == 0


def test_the_default_database_needs_no_router(settings):
    settings.DATABASE_ROUTERS = []
    assert check_events_database() == []


def test_a_separate_database_must_be_in_databases(settings):
    separate(settings)
    [problem] = check_events_database()
    assert problem.id == "eventing.E007"
    assert "'nowhere', which is not in DATABASES" in problem.msg


def test_a_separate_database_needs_the_router(settings):
    separate(settings)
    settings.DATABASE_ROUTERS = []
    problems = check_events_database()
    assert {p.id for p in problems} == {"eventing.E007"}
    assert any("EventingRouter is not in DATABASE_ROUTERS" in p.msg for p in problems)


def test_a_router_answering_first_for_event_models_is_refused(settings):
    separate(settings)
    settings.DATABASE_ROUTERS = CATCH_ALL_FIRST
    [misrouted] = [p for p in check_events_database() if "send" in p.msg]
    assert misrouted.id == "eventing.E007"
    for label in ("eventing.EventLog", "eventing.Heartbeat", "triggers.Trigger"):
        assert f"{label} to 'elsewhere'" in misrouted.msg


def test_the_suites_database_has_what_delivery_needs():
    assert check_database_features() == []


@pytest.mark.parametrize(("vendor", "named"), [("mysql", "MySQL or MariaDB"), ("oracle", "Oracle")])
def test_a_database_without_update_returning_is_refused(monkeypatch, vendor, named):
    monkeypatch.setattr(connections["default"], "vendor", vendor)
    [problem] = check_database_features()
    assert problem.id == "eventing.E008"
    assert f"('default') is {named}" in problem.msg


def test_sqlite_before_3_35_is_refused(monkeypatch):
    monkeypatch.setattr(connections["default"], "vendor", "sqlite")
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 34, 1))
    monkeypatch.setattr(sqlite3, "sqlite_version", "3.34.1")
    [problem] = check_database_features()
    assert problem.id == "eventing.E008"
    assert "SQLite 3.34.1" in problem.msg
    monkeypatch.setattr(sqlite3, "sqlite_version_info", (3, 35, 0))
    assert check_database_features() == []
