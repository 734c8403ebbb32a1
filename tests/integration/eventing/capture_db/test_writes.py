"""Database mode captures every write: queryset updates, bulk operations, raw SQL, cascades."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections, transaction

from eventing.capture import database as capture_db
from eventing.models import EventLog, EventStatus
from mission_control import actions
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY, payloads
from tests.testapp.models import Customer, Order, Untracked
from triggers.models import Trigger

pytestmark = [POSTGRES_ONLY, pytest.mark.django_db, pytest.mark.usefixtures("database_mode")]


def test_queryset_update_of_ten_thousand_rows_gives_ten_thousand_events():
    Order.objects.bulk_create(Order(status="new", quantity=n) for n in range(10_000))
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    assert Order.objects.filter(status="new").update(status="paid") == 10_000

    events = list(EventLog.objects.filter(type="DB_UPDATE"))
    assert len(events) == 10_000
    assert {e.payload["pk"] for e in events} == set(Order.objects.values_list("pk", flat=True))
    assert len({e.batch_id for e in events}) == 1  # one statement, one batch
    for event in events[::997]:
        data = event.payload
        assert data["old"]["status"] == "new"
        assert data["new"]["status"] == "paid"
        assert data["old"]["quantity"] == data["new"]["quantity"]
        assert data["changed"] == ["status"]
        assert data["new"]["id"] == data["pk"]


def test_bulk_create_bulk_update_and_queryset_delete_give_their_events():
    for kind in ("DB_INSERT", "DB_UPDATE", "DB_DELETE"):
        TriggerFactory(type=kind, source="testapp.Order")
    orders = Order.objects.bulk_create(Order(status=f"s{n}") for n in range(5))
    for order in orders:
        order.note = "bulk"
    Order.objects.bulk_update(orders, ["note"])
    Order.objects.filter(status__in=["s1", "s3"]).delete()

    assert sorted(d["new"]["status"] for d in payloads("DB_INSERT")) == [f"s{n}" for n in range(5)]
    updated = payloads("DB_UPDATE")
    assert len(updated) == 5
    assert all(d["changed"] == ["note"] and d["new"]["note"] == "bulk" for d in updated)
    assert sorted(d["old"]["status"] for d in payloads("DB_DELETE")) == ["s1", "s3"]


def test_raw_sql_and_cascades_are_captured():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    customer = Customer.objects.create(name="c")
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO testapp_order (status, total, quantity, note, attachment, customer_id) "
            "VALUES ('raw', 1, 1, '', '', %s)",
            [customer.pk],
        )
    (inserted,) = payloads("DB_INSERT")
    assert inserted["new"]["status"] == "raw"
    assert inserted["new"]["customer"] == customer.pk
    customer.delete()  # on_delete=SET_NULL: Django updates the orders
    (updated,) = payloads("DB_UPDATE")
    assert updated["changed"] == ["customer"]
    assert updated["new"]["customer"] is None


def test_rollback_records_nothing():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    seen_inside = []

    def write_then_fail() -> None:
        with transaction.atomic():
            Order.objects.bulk_create([Order(), Order()])
            # Written by the statement itself, inside the transaction.
            seen_inside.append(EventLog.objects.count())
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert seen_inside == [2]
    assert not EventLog.objects.exists()


def test_one_event_per_write_the_signals_stand_aside():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    order = Order.objects.create()
    order.status = "paid"
    order.save()
    assert EventLog.objects.count() == 2
    assert not EventLog.objects.filter(enqueued_at__isnull=False).exists()


def test_rows_look_like_the_rows_emit_writes():
    trigger = TriggerFactory(name="orders", type="DB_INSERT", source="testapp.Order", delay_s=60)
    before = dt.datetime.now(dt.UTC)
    Order.objects.create()
    event = EventLog.objects.get()
    assert (event.type, event.trigger_id, event.trigger_name, event.source) == (
        "DB_INSERT",
        trigger.pk,
        "orders",
        "testapp.Order",
    )
    assert event.status == EventStatus.STAGED
    assert event.attempts == 0
    assert event.enqueued_at is None  # the listener (or the sweeper) sends it
    assert event.locked_until is None
    assert event.processed_at is None
    assert event.remark == ""
    assert event.idempotency_key is None
    assert before <= event.created_at <= dt.datetime.now(dt.UTC)
    assert event.deliver_at - event.created_at == dt.timedelta(seconds=60)


def test_one_batch_per_statement_across_triggers():
    TriggerFactory(name="a", type="DB_UPDATE", source="testapp.Order")
    TriggerFactory(name="b", type="DB_UPDATE", source="testapp.Order")
    Order.objects.bulk_create([Order(), Order(), Order()])
    Order.objects.update(status="one")
    Order.objects.update(status="two")
    batches = {}
    for event in EventLog.objects.all():
        batches.setdefault(event.batch_id, []).append(event.payload["new"]["status"])
    assert sorted(sorted(v) for v in batches.values()) == [["one"] * 6, ["two"] * 6]


def test_watch_fields_are_compared_in_sql():
    TriggerFactory(type="DB_UPDATE", source="testapp.Order", watch_fields=["status", "total"])
    order = Order.objects.create(status="new")
    Order.objects.filter(pk=order.pk).update(note="not watched")
    Order.objects.filter(pk=order.pk).update(total="3.00")
    Order.objects.filter(pk=order.pk).update(status="new")  # written, but unchanged
    (data,) = payloads("DB_UPDATE")
    assert data["changed"] == ["total"]


def test_trigger_edits_take_effect_for_the_next_write():
    trigger = TriggerFactory(type="DB_INSERT", source="testapp.Order")
    Order.objects.create(status="first")
    trigger.filter = {"new.status": "wanted"}
    with capture_db.triggers_changing():
        trigger.save()
    Order.objects.create(status="unwanted")
    Order.objects.create(status="wanted")
    actions.pause_triggers([trigger.pk])
    Order.objects.create(status="wanted")  # recorded, held while paused
    actions.set_enabled([trigger.pk], False)
    Order.objects.create(status="wanted")
    actions.set_enabled([trigger.pk], True)
    trigger.refresh_from_db()
    trigger.type = "DB_UPDATE"
    with capture_db.triggers_changing():
        trigger.save()
    Order.objects.create(status="wanted")  # an insert: the trigger is for updates now
    Order.objects.update(note="x")
    assert [(e.type, e.payload["new"]["status"]) for e in EventLog.objects.order_by("created_at")][
        :3
    ] == [("DB_INSERT", "first"), ("DB_INSERT", "wanted"), ("DB_INSERT", "wanted")]
    assert EventLog.objects.filter(type="DB_UPDATE").count() == 4  # the "wanted" orders
    with capture_db.triggers_changing():
        trigger.delete()
    count = EventLog.objects.count()
    Order.objects.update(note="y")
    Order.objects.create()
    assert EventLog.objects.count() == count


def test_a_trigger_disabled_behind_the_orms_back_records_nothing():
    trigger = TriggerFactory(type="DB_INSERT", source="testapp.Order")
    Trigger.objects.filter(pk=trigger.pk).update(enabled=False)  # no post_save: no regeneration
    Order.objects.create()
    assert not EventLog.objects.exists()


def test_models_without_triggers_and_eventing_tables_are_not_captured():
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    Untracked.objects.create()
    Customer.objects.create(name="c")
    with pytest.raises(ValidationError) as caught:
        Trigger(
            name="loop", type="DB_INSERT", source="eventing.EventLog", url="http://x.example/"
        ).full_clean()
    assert "source" in caught.value.message_dict
    assert not EventLog.objects.exists()


class OtherDatabaseRouter:
    """Sends testapp.Order to the "other" alias (a different database on the same server)."""

    def db_for_write(self, model, **hints):
        return "other" if model._meta.label == "testapp.Order" else None

    db_for_read = db_for_write


def test_a_model_outside_the_events_database_is_refused_naming_source(settings, monkeypatch):
    other = {**connections.settings["default"], "NAME": "elsewhere"}
    monkeypatch.setitem(connections.settings, "other", other)
    settings.DATABASE_ROUTERS = [
        f"{__name__}.OtherDatabaseRouter",
        *settings.DATABASE_ROUTERS,
    ]
    trigger = Trigger(name="remote", type="DB_INSERT", source="testapp.Order", url="http://x.io/")
    with pytest.raises(ValidationError) as caught:
        trigger.full_clean()
    message = " ".join(caught.value.message_dict["source"])
    assert "'other'" in message
    assert "EVENTING['DATABASE']" in message
