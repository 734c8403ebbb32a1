"""End to end in database mode: real workers, a real receiver, writes from another program."""

from __future__ import annotations

import threading

import pytest
from django.db import connections

from eventing.capture import database as capture_db
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.support.capture_db import POSTGRES_ONLY, insert_sql, psql
from tests.testapp.models import Order
from tests.waiting import wait_until

pytestmark = [
    POSTGRES_ONLY,
    pytest.mark.e2e,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

DATABASE_MODE = {"EVENTING_CAPTURE": "database"}
LISTENING = "Capture listener active"


def test_writes_from_psql_reach_the_webhook_and_trigger_edits_apply(cluster, receiver):
    # No beat: no sweeper, so only the listener can have sent what arrives.
    worker = cluster.worker("cw1", beat=False, **DATABASE_MODE)
    wait_until(lambda: LISTENING in worker.log(), timeout_s=30, message="the listener")
    trigger = TriggerFactory(type="DB_INSERT", source="testapp.Order", url=receiver.url("/o"))

    psql(insert_sql("from psql"))
    (first,) = receiver.wait_for("/o")
    data = first.json()["data"]
    assert data["model"] == "testapp.Order"
    assert data["new"]["status"] == "from psql"

    trigger.filter = {"new.status": "wanted"}
    with capture_db.triggers_changing():
        trigger.save()
    psql(insert_sql("unwanted"))
    psql(insert_sql("wanted"))
    second = receiver.wait_for("/o", count=2)[1]
    assert second.json()["data"]["new"]["status"] == "wanted"
    assert not EventLog.objects.filter(payload__new__status="unwanted").exists()

    # Paused by another program: recorded, and held.
    psql(f"UPDATE event_triggers SET paused = true WHERE id = {trigger.pk}")
    psql(insert_sql("wanted"))
    staged = EventLog.objects.filter(status=EventStatus.STAGED)
    wait_until(staged.exists, timeout_s=10, message="the listener expands the capture")
    held = staged.get()
    assert held.trigger_id == trigger.pk
    assert held.enqueued_at is None

    with capture_db.triggers_changing():
        trigger.delete()
    psql(insert_sql("wanted"))
    assert EventLog.objects.filter(payload__new__status="wanted").count() == 2  # none new


def write_orders(stop: threading.Event, written: list[int]) -> None:
    """Insert orders one by one (autocommit), from this thread's own connection, until `stop`;
    how many goes to `written`."""
    n = 0
    try:
        while not stop.is_set():
            Order.objects.create(status=f"n{n}")
            n += 1
    finally:
        connections.close_all()
        written.append(n)


def test_a_killed_listener_loses_nothing(cluster, receiver):
    TriggerFactory(type="DB_INSERT", source="testapp.Order", url=receiver.url("/orders"))
    first = cluster.worker("cw1", beat=False, **DATABASE_MODE)
    wait_until(lambda: LISTENING in first.log(), timeout_s=30, message="the first listener")

    # The writer runs until told to stop, so the kill lands mid-run however fast it writes.
    stop, written = threading.Event(), []
    writer = threading.Thread(target=write_orders, args=(stop, written), daemon=True)
    writer.start()
    try:
        receiver.wait_for("/orders", count=50, timeout_s=60)
        first.kill()  # listener, publisher and deliverer gone mid-run
        at_kill = Order.objects.count()
        second = cluster.worker("cw2", beat=True, **DATABASE_MODE)
        wait_until(
            lambda: Order.objects.count() >= at_kill + 200,
            timeout_s=60,
            message="writes after the kill",
        )
    finally:
        stop.set()
        writer.join(60)
    (total,) = written
    # The new listener (or the sweeper) expands what the killed one left captured.
    wait_until(
        lambda: EventLog.objects.count() >= total, timeout_s=60, message=f"{total} event rows"
    )
    ids = {str(pk) for pk in EventLog.objects.values_list("id", flat=True)}
    assert len(ids) == total

    def all_arrived() -> bool:
        return ids <= {r.headers.get("webhook-id") for r in receiver.on("/orders")}

    wait_until(all_arrived, timeout_s=120, interval_s=0.25, message=f"{total} deliveries")
    wait_until(lambda: LISTENING in second.log(), timeout_s=30, message="the new listener")
    statuses = set(EventLog.objects.values_list("status", flat=True).distinct())
    assert statuses <= {EventStatus.PROCESSED, EventStatus.PROCESSING}
