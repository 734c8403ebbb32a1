"""emit() and the DB receivers: rows in the caller's transaction, messages on commit."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from eventing import emit
from eventing.models import EventLog, EventStatus
from eventing.recording.emit import IdempotencyConflict
from tests.e2e.eventing.test_e2e_delivery import create_then_roll_back
from tests.factories import TriggerFactory
from tests.testapp.models import Document, Order

pytestmark = pytest.mark.django_db


def test_custom_event_makes_one_row_per_matching_trigger(
    message_per_event, django_capture_on_commit_callbacks
):
    TriggerFactory(name="a", type="order_placed")
    TriggerFactory(name="b", type="order_placed")
    TriggerFactory(name="c", type="other")
    with django_capture_on_commit_callbacks(execute=True):
        rows = emit("order_placed", {"id": 1})
    assert sorted(r.trigger_name for r in rows) == ["a", "b"]
    assert len({r.batch_id for r in rows}) == 1
    assert all(r.status == EventStatus.STAGED for r in rows)
    assert message_per_event.call_count == 2
    assert {c.args[0][0] for c in message_per_event.call_args_list} == {str(r.id) for r in rows}


def test_message_is_sent_only_on_commit(message_per_event, django_capture_on_commit_callbacks):
    TriggerFactory(type="order_placed")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        emit("order_placed", {})
    assert message_per_event.call_count == 0
    assert callbacks  # the publish (and the emitted-events metric) wait for the commit
    for callback in callbacks:
        callback()
    assert message_per_event.call_count == 1


def test_rollback_leaves_no_row_and_no_message(
    message_per_event, django_capture_on_commit_callbacks
):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    with django_capture_on_commit_callbacks(execute=True) as callbacks, pytest.raises(RuntimeError):
        create_then_roll_back()
    assert callbacks == []
    assert not EventLog.objects.exists()
    assert message_per_event.call_count == 0


def test_no_trigger_no_row():
    assert emit("nobody_listens", {"x": 1}) == []
    assert not EventLog.objects.exists()


def test_filter_selects_triggers(message_per_event):
    TriggerFactory(name="paid", type="order", filter={"status": "paid"})
    TriggerFactory(name="any", type="order")
    assert [r.trigger_name for r in emit("order", {"status": "new"})] == ["any"]
    assert sorted(r.trigger_name for r in emit("order", {"status": "paid"})) == ["any", "paid"]


def test_scheduling_options(message_per_event):
    TriggerFactory(type="order", delay_s=10)
    now = timezone.now()
    [row] = emit("order", {}, delay_s=5)
    assert dt.timedelta(seconds=14) < row.deliver_at - now < dt.timedelta(seconds=16)
    later = now + dt.timedelta(days=2)
    [row] = emit("order", {}, deliver_at=later)
    assert row.deliver_at == later + dt.timedelta(seconds=10)
    assert row.enqueued_at is None  # beyond the ETA horizon: the sweeper sends it


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"delay_s": 1, "deliver_at": timezone.now()}, "deliver_at"),
        ({"delay_s": -1}, "delay_s"),
        ({"deliver_at": dt.datetime(2030, 1, 1)}, "deliver_at"),  # naive
        ({"delay_s": 10 * 365 * 24 * 3600}, "deliver_at"),  # absurdly far
    ],
)
def test_bad_schedule_is_refused(kwargs, field):
    TriggerFactory(type="order")
    with pytest.raises(ValidationError) as info:
        emit("order", {}, **kwargs)
    assert field in info.value.message_dict


def test_bad_type_is_refused():
    with pytest.raises(ValidationError) as info:
        emit("no spaces", {})
    assert "type" in info.value.message_dict


def test_idempotency_key_returns_the_first_rows_or_a_conflict(message_per_event):
    """The rule every entry point shares (tests/integration/eventing/test_idempotency.py)."""
    TriggerFactory(type="order")
    first = emit("order", {"n": 1}, idempotency_key="k1")
    again = emit("order", {"n": 1}, idempotency_key="k1")
    assert [r.id for r in again] == [r.id for r in first]
    with pytest.raises(IdempotencyConflict):
        emit("order", {"n": 2}, idempotency_key="k1")
    assert EventLog.objects.count() == 1
    assert len(emit("order", {}, idempotency_key="k2")) == 1


def test_update_payload_has_old_new_changed(message_per_event):
    TriggerFactory(type="DB_UPDATE", source="testapp.Order")
    order = Order.objects.create(status="new", total="1.5")
    order.status = "paid"
    order.total = "1.50"  # same value, other spelling: not a change
    order.save()
    data = EventLog.objects.get().payload
    assert data["old"]["status"] == "new"
    assert data["new"]["status"] == "paid"
    assert data["changed"] == ["status"]


def test_payload_fields_limit_old_and_new(message_per_event):
    TriggerFactory(type="DB_UPDATE", source="testapp.Order", payload_fields=["status"])
    order = Order.objects.create(status="new")
    order.status = "paid"
    order.save()
    data = EventLog.objects.get().payload
    assert data["old"] == {"status": "new"}
    assert data["new"] == {"status": "paid"}


def test_db_filter_on_new_values(message_per_event):
    TriggerFactory(type="DB_INSERT", source="testapp.Order", filter={"new.status": "paid"})
    Order.objects.create(status="new")
    Order.objects.create(status="paid")
    assert [e.payload["new"]["status"] for e in EventLog.objects.all()] == ["paid"]


def test_uuid_pk_insert_is_an_insert_without_old_row(message_per_event):
    # That no SELECT of an old row runs is measured in bench/bench_statements.py.
    TriggerFactory(type="DB_UPDATE", source="testapp.Document")
    TriggerFactory(type="DB_INSERT", source="testapp.Document")
    document = Document.objects.create(title="a")
    event = EventLog.objects.get()
    assert event.type == "DB_INSERT"
    assert event.payload["old"] is None
    assert event.payload["new"]["title"] == "a"
    assert event.payload["pk"] == str(document.pk)


def test_delete_event(message_per_event):
    TriggerFactory(type="DB_DELETE", source="testapp.Order")
    order = Order.objects.create(status="gone")
    pk = order.pk
    Order.objects.filter(pk=pk).delete()  # queryset deletes send post_delete too
    data = EventLog.objects.get().payload
    assert data["pk"] == pk
    assert data["old"]["status"] == "gone"
    assert data["new"] is None
