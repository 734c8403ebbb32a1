"""A separate events database: EVENTING["DATABASE"] = "events", a second PostgreSQL database.

Orders, users and sessions stay in "default"; triggers, event types, events, invocations and
heartbeats live in "events". A real worker process configured the same way (through the
environment variables tests/settings.py reads) delivers to a real receiver, and Mission Control
reads the events back from "events".
"""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connections, router, transaction
from django.test import override_settings
from django.urls import reverse

from eventing import emit
from eventing.checks import check_database_features, check_events_database
from eventing.models import EventLog, EventStatus, Heartbeat, InvocationLog
from tests.factories import TriggerFactory
from tests.processes import CeleryProcess, workers_parked
from tests.testapp.models import Order
from tests.waiting import wait_until
from triggers.models import EventType, Trigger

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        "events" not in connections,
        reason="needs the second database that `python -m tests.stack postgres` creates "
        "(EVENTING_TEST_EVENTS_DATABASE_URL)",
    ),
    pytest.mark.django_db(transaction=True, databases=["default", "events"]),
]

EVENT_MODELS = (Trigger, EventType, EventLog, InvocationLog, Heartbeat)
EVENTS_PAGE = "mission_control:eventing_eventlog_changelist"


def events_in(alias: str) -> dict[str, int]:
    """Rows of each event table in database `alias`."""
    return {model._meta.db_table: model.objects.using(alias).count() for model in EVENT_MODELS}


NO_ROWS = {model._meta.db_table: 0 for model in EVENT_MODELS}


@pytest.fixture(scope="module")
def events_tables(django_db_setup, django_db_blocker):
    """The event tables in "events", made as a deployment makes them: migrate --database events."""
    with (
        django_db_blocker.unblock(),
        override_settings(EVENTING={**django_settings.EVENTING, "DATABASE": "events"}),
    ):
        if "event_logs" not in connections["events"].introspection.table_names():
            # The session created "events" while EVENTING["DATABASE"] was "default": the router
            # kept the event tables out, and Django recorded their migrations as applied.
            call_command("migrate", "triggers", "zero", database="events", fake=True, verbosity=0)
        call_command("migrate", database="events", verbosity=0)


@pytest.fixture(scope="module")
def events_worker(events_tables, django_db_blocker):
    """A worker with the sweeper, its EVENTING["DATABASE"] "events"; the session's worker (on
    "default") is parked meanwhile, as it would take these tests' messages."""
    with workers_parked():
        with django_db_blocker.unblock():
            # Left by the parked worker's sweeper: every row in "default" from here on is a bug.
            Heartbeat.objects.using("default").delete()
        worker = CeleryProcess(name="events", env={"EVENTING_TEST_DATABASE": "events"}).start()
        yield worker
        worker.stop()


@pytest.fixture
def events_database(settings, events_tables):
    """This process with EVENTING["DATABASE"] = "events"."""
    settings.EVENTING = {**settings.EVENTING, "DATABASE": "events"}


@pytest.fixture
def events_worker_running(events_database, events_worker):
    """The events worker, checked alive."""
    if events_worker.proc.poll() is not None:
        pytest.fail(f"The events worker died:\n{events_worker.tail()}")
    return events_worker


def add_trigger_in_mission_control(admin_client, **fields) -> None:
    """Create a trigger through Mission Control's form (a new instance saved via the router)."""
    form = {
        "description": "",
        "custom_type": "",
        "source_model": "",
        "source_storage": "",
        "payload_fields": [],
        "path_pattern": "",
        "filter": "{}",
        "headers": "[]",
        "timeout_ms": 5000,
        "retries": 3,
        "backoff_base_s": 5,
        "backoff_max_s": 3600,
        "retry_policy": "transient",
        "retry_statuses": "[]",
        "circuit_failures": 10,
        "delay_s": 0,
        "enabled": "on",
        "paused_reason": "",
        **fields,
    }
    response = admin_client.post(reverse("mission_control:triggers_trigger_add"), form)
    assert response.status_code == 302, response.context["adminform"].form.errors


def test_migrate_creates_the_event_tables_in_the_events_database(events_database):
    tables = set(connections["events"].introspection.table_names())
    assert {model._meta.db_table for model in EVENT_MODELS} <= tables
    # `migrate --database default` leaves them out.
    assert not router.allow_migrate("default", "eventing", model_name="eventlog")
    assert not router.allow_migrate("default", "triggers", model_name="trigger")
    assert router.allow_migrate("events", "eventing", model_name="eventlog")


def test_custom_and_db_events_are_delivered_and_listed_from_the_events_database(
    events_worker_running, receiver, admin_client
):
    add_trigger_in_mission_control(
        admin_client,
        name="orders_created",
        kind="DB_INSERT",
        source_model="testapp.Order",
        url=receiver.url("/ok/orders"),
    )
    TriggerFactory(name="shipping", type="order_shipped", url=receiver.url("/ok/shipped"))

    order = Order.objects.create(status="new")
    [shipped] = emit("order_shipped", {"order": order.pk})

    insert = receiver.wait_for("/ok/orders")[0].json()
    assert insert["type"] == "DB_INSERT"
    assert insert["data"]["db"] == "default"  # where the order was written
    assert insert["data"]["pk"] == order.pk
    custom = receiver.wait_for("/ok/shipped")[0].json()
    assert custom["id"] == str(shipped.id)
    assert custom["data"] == {"order": order.pk}
    processed = EventLog.objects.using("events").filter(status=EventStatus.PROCESSED)
    wait_until(lambda: processed.count() == 2, message="both events processed in 'events'")
    assert InvocationLog.objects.using("events").count() == 2
    assert Trigger.objects.using("events").filter(name="orders_created").exists()
    assert Order.objects.using("default").filter(pk=order.pk).exists()
    assert not Order.objects.using("events").exists()

    listing = admin_client.get(reverse(EVENTS_PAGE))
    assert listing.status_code == 200
    listed = {event.id for event in listing.context["cl"].result_list}
    assert listed == set(processed.values_list("id", flat=True))
    page = admin_client.get(reverse("mission_control:eventing_eventlog_change", args=[shipped.id]))
    assert page.status_code == 200
    assert receiver.url("/ok/shipped") in page.content.decode()  # its invocation, from "events"

    wait_until(
        lambda: Heartbeat.objects.using("events").filter(name="sweep").exists(),
        message="the worker's sweeper writing its heartbeat to 'events'",
    )
    assert events_in("default") == NO_ROWS


def test_a_failed_attempt_is_retried_on_the_events_database(events_worker_running, receiver):
    TriggerFactory(
        type="order_placed",
        retries=2,
        backoff_base_s=0.5,
        backoff_max_s=1,
        url=receiver.url("/flaky/1"),
    )
    [event] = emit("order_placed", {"n": 1})

    calls = receiver.wait_for("/flaky/1", count=2)
    assert [call.headers["X-Eventing-Attempt"] for call in calls] == ["1", "2"]
    row = EventLog.objects.using("events").filter(id=event.id)
    wait_until(lambda: row.get().status == EventStatus.PROCESSED, message="processed on retry")
    assert row.get().attempts == 2
    codes = row.get().invocations.order_by("attempt").values_list("response_status_code")
    assert [code for (code,) in codes] == [500, 200]
    assert events_in("default") == NO_ROWS


def save_order_then_roll_back() -> None:
    """Create an order inside a transaction on "default" that then rolls back."""
    with transaction.atomic():
        Order.objects.create(status="rolled back")
        raise RuntimeError("roll back")


def test_a_rolled_back_write_still_sends_its_event(events_worker_running, receiver):
    """As docs/guarantees.md says: the event row is committed on "events" at once, outside the
    transaction on "default", so the webhook is called for an order that never existed."""
    TriggerFactory(type="DB_INSERT", source="testapp.Order", url=receiver.url("/ok/ghost"))
    with pytest.raises(RuntimeError):
        save_order_then_roll_back()
    assert receiver.wait_for("/ok/ghost")[0].json()["data"]["new"]["status"] == "rolled back"
    assert not Order.objects.exists()


def test_checks_accept_the_events_database_only_with_the_router(events_database, settings):
    assert check_events_database() == []
    assert check_database_features() == []
    settings.DATABASE_ROUTERS = []
    [problem] = check_events_database()
    assert problem.id == "eventing.E007"
    assert "DATABASE_ROUTERS" in problem.msg
