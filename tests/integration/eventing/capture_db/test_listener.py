"""The listener expands and publishes what trigger functions captured as soon as it commits; the
sweeper covers when no listener runs."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from eventing.maintenance.listener import LOCK_KEY, Listener, publish_captures
from eventing.maintenance.sweeper import sweep
from eventing.models import EventCapture, EventLog
from mission_control import actions
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY
from tests.testapp.models import Order
from tests.waiting import wait_until

pytestmark = [POSTGRES_ONLY, pytest.mark.usefixtures("committed_database_mode")]


def sent_ids(message_per_event) -> set[str]:
    """Event ids handed to the broker (one message per event: the `message_per_event` fixture)."""
    return {call.args[0][0] for call in message_per_event.call_args_list}


@pytest.fixture
def listener():
    """A listener thread in this process, active (holding the lock) before the test writes."""
    started = Listener()
    assert started.active.wait(10), "the listener never became active"
    yield started
    started.stop()


def test_rows_are_published_when_the_write_commits(listener, message_per_event):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    with transaction.atomic():
        Order.objects.create(status="one")
        Order.objects.create(status="two")
    wait_until(
        lambda: len(sent_ids(message_per_event)) == 2, timeout_s=10, message="both rows published"
    )
    ids = {str(pk) for pk in EventLog.objects.values_list("id", flat=True)}
    assert sent_ids(message_per_event) == ids
    assert not EventLog.objects.filter(enqueued_at__isnull=True).exists()
    assert not EventCapture.objects.exists()  # expanded, and gone in the same transaction


def test_a_rolled_back_write_publishes_nothing(listener, message_per_event):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    transaction.set_autocommit(False)
    try:
        Order.objects.create(status="rolled back")
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    Order.objects.create(status="kept")
    wait_until(lambda: sent_ids(message_per_event), timeout_s=10, message="publish")
    (event,) = EventLog.objects.all()
    assert event.payload["new"]["status"] == "kept"
    assert sent_ids(message_per_event) == {str(event.id)}


def test_a_standby_listener_takes_over(listener, message_per_event):
    standby = Listener()
    try:
        # One listener per database: the first holds the lock, the second waits for it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
            assert cursor.fetchone() == (False,)
        assert not standby.active.is_set()
        listener.stop()
        assert standby.active.wait(10), "the standby never took over"
        TriggerFactory(type="DB_INSERT", source="testapp.Order")
        Order.objects.create()
        wait_until(lambda: sent_ids(message_per_event), timeout_s=10, message="publish")
        (event,) = EventLog.objects.all()
        assert sent_ids(message_per_event) == {str(event.id)}
    finally:
        standby.stop()


def test_without_a_listener_the_sweeper_sends_the_rows(message_per_event):
    TriggerFactory(type="DB_INSERT", source="testapp.Order")
    Order.objects.create()
    assert not EventLog.objects.exists()  # captured; nothing expanded it yet
    assert EventCapture.objects.count() == 1
    report = sweep()
    assert (report["expanded"], report["enqueued"]) == (1, 1)
    (event,) = EventLog.objects.all()
    assert sent_ids(message_per_event) == {str(event.id)}
    assert not EventCapture.objects.exists()


def test_rows_of_a_paused_trigger_wait_for_resume(message_per_event):
    trigger = TriggerFactory(type="DB_INSERT", source="testapp.Order")
    actions.pause_triggers([trigger.pk])
    Order.objects.create()
    assert publish_captures() == 0
    (event,) = EventLog.objects.all()
    assert event.enqueued_at is None
    actions.resume_triggers([trigger.pk])
    assert sweep()["enqueued"] == 1
    assert sweep()["enqueued"] == 0  # sent once
    assert sent_ids(message_per_event) == {str(event.id)}


def test_the_listener_sends_only_the_first_row_of_each_ordering_key(listener, message_per_event):
    TriggerFactory(type="DB_INSERT", source="testapp.Order", ordering_key="new.status")
    with transaction.atomic():
        for status in ("a", "a", "b"):
            Order.objects.create(status=status)
    wait_until(lambda: len(sent_ids(message_per_event)) == 2, timeout_s=10, message="2 sent")
    rows = list(EventLog.objects.order_by("created_at", "id"))
    assert [row.ordering_key for row in rows] == ["a", "a", "b"]
    first_a, second_a, b = rows
    assert sent_ids(message_per_event) == {str(first_a.id), str(b.id)}
    # No message behind an unfinished head: the head sends it when it finishes.
    assert second_a.enqueued_at is None
    assert sweep()["enqueued"] == 0  # the sweeper holds it too while its head is unfinished


def test_the_listener_holds_a_row_behind_an_earlier_unfinished_one(listener, message_per_event):
    TriggerFactory(type="DB_INSERT", source="testapp.Order", ordering_key="new.status")
    Order.objects.create(status="a")
    wait_until(lambda: sent_ids(message_per_event), timeout_s=10, message="the head sent")
    with transaction.atomic():  # expanded in a later pass than the head's, both in one
        Order.objects.create(status="a")
        Order.objects.create(status="b")
    wait_until(lambda: len(sent_ids(message_per_event)) == 2, timeout_s=10, message="b sent")
    head, behind = EventLog.objects.filter(ordering_key="a").order_by("created_at", "id")
    (b,) = EventLog.objects.filter(ordering_key="b")
    assert sent_ids(message_per_event) == {str(head.id), str(b.id)}
    assert behind.enqueued_at is None
    assert not EventCapture.objects.exists()


def test_the_listener_expands_but_holds_rows_of_a_paused_trigger(listener, message_per_event):
    trigger = TriggerFactory(type="DB_INSERT", source="testapp.Order")
    actions.pause_triggers([trigger.pk])
    Order.objects.create()
    wait_until(EventLog.objects.exists, timeout_s=10, message="the listener expands the capture")
    (event,) = EventLog.objects.all()
    # Expanded and marked in one statement: what the listener did not mark, it does not send.
    assert event.enqueued_at is None
    assert not sent_ids(message_per_event)
    actions.resume_triggers([trigger.pk])
    assert sweep()["enqueued"] == 1
    assert sent_ids(message_per_event) == {str(event.id)}
