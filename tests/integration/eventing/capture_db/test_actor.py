"""Database mode: trigger functions read the actor from the transaction-local eventing.actor."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

import eventing
from eventing.capture import database as capture_db
from eventing.models import EventLog
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY
from tests.testapp.models import Order

pytestmark = [POSTGRES_ONLY]


def actors(event_type: str) -> list[str | None]:
    rows = EventLog.objects.filter(type=event_type).order_by("created_at")
    return [row.payload.get("actor") for row in rows]


@pytest.mark.django_db
@pytest.mark.usefixtures("database_mode")
def test_writes_in_a_transaction_carry_their_own_actor():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    with eventing.actor("billing-job"):
        Order.objects.bulk_create([Order(status="a"), Order(status="b")])
    with eventing.actor("cashier"):
        Order.objects.filter(status="a").update(status="paid")
    Order.objects.filter(status="b").update(status="paid")  # nobody known, same transaction
    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_order SET note = %s", ["raw"])  # no actor known

    assert actors("DB_INSERT") == ["billing-job", "billing-job"]
    assert actors("DB_UPDATE")[:2] == ["cashier", None]
    assert set(actors("DB_UPDATE")[2:]) == {None}


@pytest.mark.django_db
@pytest.mark.usefixtures("database_mode")
def test_a_trigger_that_leaves_the_actor_out_gets_none_in_database_mode():
    TriggerFactory(name="with_actor", type="DB_INSERT", source="testapp.Order")
    TriggerFactory(name="without", type="DB_INSERT", source="testapp.Order", send_actor=False)
    with eventing.actor("billing-job"):
        Order.objects.create(status="new")

    by_trigger = {e.trigger_name: e.payload for e in EventLog.objects.all()}
    assert by_trigger["with_actor"]["actor"] == "billing-job"
    assert "actor" not in by_trigger["without"]


@pytest.mark.usefixtures("committed_database_mode")
def test_an_autocommit_write_carries_the_actor_and_does_not_leak_it_to_the_next():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    assert connection.get_autocommit()
    with eventing.actor("billing-job"):
        Order.objects.create(status="first")
    Order.objects.create(status="second")
    with transaction.atomic():
        Order.objects.create(status="third")
    capture_db.expand_all()  # as the listener does after commit, in a session with no actor

    assert actors("DB_INSERT") == ["billing-job", None, None]
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('eventing.actor', true)")
        assert cursor.fetchone()[0] in ("", None)


@pytest.mark.django_db
@pytest.mark.usefixtures("database_mode")
def test_the_functions_installed_while_migrating_pass_the_actor_too():
    TriggerFactory(name="with_actor", type="DB_INSERT", source="testapp.Order")
    TriggerFactory(name="without", type="DB_INSERT", source="testapp.Order", send_actor=False)
    capture_db.sync(robust=True)  # what runs before migrations: columns read by name
    with eventing.actor("migration-job"):
        Order.objects.create(status="new")

    by_trigger = {e.trigger_name: e.payload for e in EventLog.objects.all()}
    assert by_trigger["with_actor"]["actor"] == "migration-job"
    assert "actor" not in by_trigger["without"]
