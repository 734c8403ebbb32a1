"""Manual invoke and backfill: rows sent to a DB trigger as MANUAL events, in batches,
idempotent per (trigger, row) under one backfill id; the command; 1,000 rows end to end."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from eventing.capture import backfill
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.testapp.models import Order
from tests.waiting import wait_until
from triggers.models import Trigger


def run(*args: str) -> str:
    out = StringIO()
    call_command("eventing_backfill", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def orders_trigger(db):
    return TriggerFactory(
        name="orders_sync", type="DB_UPDATE", source="testapp.Order", url="http://127.0.0.1:9/"
    )


@pytest.mark.django_db
def test_rows_become_manual_events_with_the_row_as_new(orders_trigger, deliver_messages):
    Order.objects.bulk_create(Order(status=s, total="2.50") for s in ("new", "paid", "paid"))
    rows = backfill.rows_for(orders_trigger, {"status": "paid"})

    totals = backfill.backfill(orders_trigger, rows, batch_size=1)

    assert (totals.total, totals.sent, totals.skipped) == (2, 2, 0)
    events = list(EventLog.objects.order_by("created_at", "id"))
    assert {e.type for e in events} == {"MANUAL"}
    assert {e.trigger_id for e in events} == {orders_trigger.pk}
    paid = list(Order.objects.filter(status="paid").order_by("pk"))
    assert sorted(e.payload["pk"] for e in events) == [o.pk for o in paid]
    data = events[0].payload
    assert data["old"] is None
    assert data["model"] == "testapp.Order"
    assert data["table"] == "testapp_order"
    assert data["new"]["status"] == "paid"
    assert data["new"]["total"] == "2.50"
    assert {e.status for e in events} == {EventStatus.STAGED}


@pytest.mark.django_db
def test_backfilled_events_keep_the_trigger_s_order_and_delay(deliver_messages):
    trigger = TriggerFactory(
        name="ordered_sync",
        type="DB_UPDATE",
        source="testapp.Order",
        url="http://127.0.0.1:9/",
        ordering_key="new.status",
        delay_s=60,
    )
    Order.objects.bulk_create(Order(status=s) for s in ("a", "b", "a"))
    backfill.backfill(trigger, backfill.rows_for(trigger), batch_size=10)
    events = list(EventLog.objects.order_by("created_at", "id"))
    # Built from the trigger itself (TriggerSpec.from_trigger): its ordering key applies too.
    assert [e.ordering_key for e in events] == ["a", "b", "a"]
    assert all((e.deliver_at - e.created_at).total_seconds() >= 59 for e in events)


@pytest.mark.django_db
def test_rerun_with_the_same_backfill_id_sends_nothing_twice(orders_trigger, deliver_messages):
    Order.objects.bulk_create(Order(status="new") for _ in range(5))
    rows = backfill.rows_for(orders_trigger)
    # Interrupted after two batches of two…
    first = backfill.send_batch(orders_trigger, rows, backfill_id="b1", batch_size=2)
    backfill.send_batch(orders_trigger, rows, backfill_id="b1", after=first.last_pk, batch_size=2)
    assert EventLog.objects.count() == 4

    # …then run again from the start: only the fifth row is new.
    totals = backfill.backfill(orders_trigger, rows, backfill_id="b1", batch_size=2)
    assert (totals.sent, totals.skipped) == (1, 4)
    assert EventLog.objects.count() == 5
    # Another backfill id is another backfill: every row again.
    assert backfill.backfill(orders_trigger, rows, backfill_id="b2").sent == 5


@pytest.mark.django_db
def test_sensitive_fields_stay_out_as_in_db_events(deliver_messages):
    User.objects.create_user("ada", password="secret-pass-123")
    trigger = TriggerFactory(type="DB_INSERT", source="auth.User", url="http://127.0.0.1:9/")
    backfill.backfill(trigger, backfill.rows_for(trigger))
    [event] = EventLog.objects.all()
    assert event.payload["new"]["username"] == "ada"
    assert "password" not in event.payload["new"]


@pytest.mark.django_db
def test_only_db_triggers_and_real_fields(orders_trigger):
    custom = TriggerFactory(type="order_placed")
    with pytest.raises(ValidationError, match="not a DB trigger"):
        backfill.rows_for(custom)
    with pytest.raises(ValidationError):
        backfill.rows_for(orders_trigger, {"nope": "1"})
    # MANUAL is no trigger's type: its events come from here only.
    with pytest.raises(ValidationError, match="MANUAL"):
        Trigger(name="m", type="MANUAL", url="https://h.example.com").full_clean()


@pytest.mark.django_db
def test_command_counts_dry_runs_and_reports_progress(orders_trigger, deliver_messages):
    Order.objects.bulk_create(Order(status="paid" if i % 2 else "new") for i in range(10))

    assert "5 rows would be sent" in run("orders_sync", "--filter", "status=paid", "--dry-run")
    assert not EventLog.objects.exists()

    out = run("orders_sync", "--filter", "status=paid", "--batch-size", "2", "--backfill-id", "x")
    assert "Backfill x: 5 rows to orders_sync." in out
    for progress in ("2/5 rows", "4/5 rows", "5/5 rows"):
        assert progress in out
    assert "5 MANUAL events recorded, 0 rows skipped" in out
    again = run("orders_sync", "--filter", "status__in=paid,new", "--backfill-id", "x")
    assert "5 MANUAL events recorded, 5 rows skipped" in again
    assert EventLog.objects.filter(type="MANUAL").count() == 10

    with pytest.raises(CommandError, match="No trigger"):
        run("nope")
    with pytest.raises(CommandError, match="field=value"):
        run("orders_sync", "--filter", "status")


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_backfill_of_1000_rows_delivers_1000_manual_events(worker, receiver):
    trigger = TriggerFactory(
        name="orders_backfill",
        type="DB_UPDATE",
        source="testapp.Order",
        url=receiver.url("/ok/backfill"),
    )
    # bulk_create fires no signals: these rows exist before the trigger hears of them.
    Order.objects.bulk_create(Order(status="old", quantity=i) for i in range(1000))

    out = run("orders_backfill", "--batch-size", "250")

    assert "1000 MANUAL events recorded" in out
    # Delivery is at least once: a worker starved past its lease may send a row twice, so
    # what must arrive is every row, counted by primary key.
    wait_until(
        lambda: len({r.json()["data"]["pk"] for r in receiver.on("/ok/backfill")}) == 1000,
        timeout_s=120,
        message="1,000 rows delivered",
    )
    bodies = [r.json() for r in receiver.on("/ok/backfill")]
    assert {b["type"] for b in bodies} == {"MANUAL"}
    assert {b["data"]["new"]["quantity"] for b in bodies} == set(range(1000))
    wait_until(
        lambda: (
            EventLog.objects.filter(trigger=trigger, status=EventStatus.PROCESSED).count() == 1000
        ),
        timeout_s=60,
        message="1,000 events processed",
    )
