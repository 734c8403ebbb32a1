"""End to end: a saved row reaches a real receiver through a real Celery worker."""

from __future__ import annotations

import datetime as dt
import json
from unittest import mock

import jwt
import pytest
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from eventing import emit
from eventing.models import EventLog, EventStatus
from eventing.recording.emit import EventRequest, emit_batch
from tests.factories import TriggerFactory
from tests.processes import CeleryProcess
from tests.testapp.models import Order
from tests.waiting import wait_until
from triggers.models import Trigger

# `stacks`: the broker and the database engine decide this outcome; make test runs it on each.
pytestmark = [pytest.mark.e2e, pytest.mark.stacks, pytest.mark.django_db(transaction=True)]


def status_of(event_id) -> str:
    return EventLog.objects.get(id=event_id).status


def test_insert_update_delete_payloads(worker, receiver):
    for kind in ("DB_INSERT", "DB_UPDATE", "DB_DELETE"):
        TriggerFactory(
            name=f"orders_{kind.lower()}",
            type=kind,
            source="testapp.Order",
            url=receiver.url(f"/ok/{kind}"),
        )
    order = Order.objects.create(status="new", total="10.50", quantity=2**60, note="hi")
    order.status = "paid"
    order.save()
    pk = order.pk
    order.delete()

    insert = receiver.wait_for("/ok/DB_INSERT")[0].json()
    update = receiver.wait_for("/ok/DB_UPDATE")[0].json()
    delete = receiver.wait_for("/ok/DB_DELETE")[0].json()

    assert insert["type"] == "DB_INSERT"
    assert insert["specversion"] == "1.0"
    assert insert["source"] == "eventing"
    data = insert["data"]
    assert data["model"] == "testapp.Order"
    assert data["table"] == "testapp_order"
    assert data["db"] == "default"
    assert data["pk"] == pk
    assert data["old"] is None
    assert "changed" not in data
    assert data["new"]["total"] == "10.50"
    assert data["new"]["quantity"] == str(2**60)  # beyond 2**53: a string
    assert data["new"]["attachment"] is None

    assert update["data"]["old"]["status"] == "new"
    assert update["data"]["new"]["status"] == "paid"
    assert update["data"]["changed"] == ["status"]

    assert delete["data"]["new"] is None
    assert delete["data"]["old"]["status"] == "paid"
    assert delete["data"]["pk"] == pk
    wait_until(
        lambda: not EventLog.objects.exclude(status=EventStatus.PROCESSED).exists(),
        message="every event processed",
    )
    assert EventLog.objects.filter(status=EventStatus.PROCESSED).count() == 3


def test_update_of_unwatched_fields_fires_nothing(worker, receiver):
    TriggerFactory(
        type="DB_UPDATE",
        source="testapp.Order",
        watch_fields=["status"],
        url=receiver.url("/ok/watch"),
    )
    order = Order.objects.create(status="new")
    order.note = "only the note"
    order.save()
    assert not EventLog.objects.exists()
    order.status = "paid"
    order.save()
    assert receiver.wait_for("/ok/watch")[0].json()["data"]["changed"] == ["status"]


def create_then_roll_back() -> None:
    """Save a row inside a transaction that then rolls back."""
    with transaction.atomic():
        Order.objects.create(status="new")
        raise RuntimeError("roll back")


def test_rollback_fires_nothing(worker, receiver):
    TriggerFactory(type="DB_INSERT", source="testapp.Order", url=receiver.url("/ok/rb"))
    with pytest.raises(RuntimeError):
        create_then_roll_back()
    Order.objects.create(status="after")  # a committed one, as a marker
    # The row is the truth: only the committed write has one, so nothing else can be sent.
    [row] = EventLog.objects.filter(type="DB_INSERT")
    assert row.payload["new"]["status"] == "after"
    wait_until(lambda: status_of(row.id) == EventStatus.PROCESSED, message="marker delivered")
    assert [r.json()["data"]["new"]["status"] for r in receiver.on("/ok/rb")] == ["after"]


def test_failing_receiver_retries_with_backoff_then_dead_letter(worker, receiver):
    trigger = TriggerFactory(
        type="order_placed",
        retries=2,
        backoff_base_s=0.5,
        backoff_max_s=5,
        url=receiver.url("/status/500"),
    )
    TriggerFactory(name="dlq_catcher", type=f"dlq_{trigger.name}", url=receiver.url("/ok/dlq"))
    [event] = emit("order_placed", {"n": 1})

    calls = receiver.wait_for("/status/500", count=3)
    gaps = [b.at - a.at for a, b in zip(calls, calls[1:], strict=False)]
    assert gaps[0] >= 0.5 * 0.8 - 0.05
    assert gaps[1] >= 1.0 * 0.8 - 0.05
    assert [c.headers["X-Eventing-Attempt"] for c in calls] == ["1", "2", "3"]
    assert len({c.headers["webhook-id"] for c in calls}) == 1
    wait_until(lambda: status_of(event.id) == EventStatus.FAILED, message="event failed")
    row = EventLog.objects.get(id=event.id)
    assert row.attempts == 3
    assert row.last_status_code == 500
    assert row.invocations.count() == 3
    dlq = receiver.wait_for("/ok/dlq")[0].json()
    assert dlq["type"] == f"dlq_{trigger.name}"
    assert dlq["data"]["event_id"] == str(event.id)
    # Space Cloud's dead letter: the payload as a JSON string, the trigger as event_name
    assert json.loads(dlq["data"]["event_payload"]) == {"n": 1}
    assert dlq["data"]["event_name"] == trigger.name
    assert dlq["data"]["trigger"] == trigger.name


def test_gone_pauses_the_trigger(worker, receiver):
    trigger = TriggerFactory(type="order_placed", url=receiver.url("/status/410"))
    [event] = emit("order_placed", {"n": 1})
    wait_until(lambda: status_of(event.id) == EventStatus.FAILED, message="event failed")
    trigger.refresh_from_db()
    assert trigger.paused
    assert "410" in trigger.paused_reason
    assert len(receiver.on("/status/410")) == 1
    # Events keep being recorded for a paused trigger, and are held.
    [held] = emit("order_placed", {"n": 2})
    # Held: the worker takes its message and leaves it staged with none (enqueued_at empty).
    wait_until(
        lambda: EventLog.objects.filter(
            id=held.id, status=EventStatus.STAGED, enqueued_at=None
        ).exists(),
        message="the paused trigger's event held",
    )
    assert EventLog.objects.get(id=held.id).attempts == 0
    Trigger.objects.filter(pk=trigger.pk).update(paused=False, url=receiver.url("/ok/resumed"))
    receiver.wait_for("/ok/resumed")
    wait_until(lambda: status_of(held.id) == EventStatus.PROCESSED, message="held delivered")


def test_retry_after_is_honoured(worker, receiver):
    TriggerFactory(
        type="order_placed",
        retries=1,
        backoff_base_s=0.1,
        backoff_max_s=10,
        url=receiver.url("/retry-after/503/2"),
    )
    emit("order_placed", {})
    first, second = receiver.wait_for("/retry-after/503/2", count=2, timeout_s=20)
    assert second.at - first.at >= 2.0


def test_slow_receiver_is_a_failed_attempt(worker, receiver):
    TriggerFactory(type="order_placed", retries=0, timeout_ms=500, url=receiver.url("/slow/2"))
    [event] = emit("order_placed", {})
    wait_until(lambda: status_of(event.id) == EventStatus.FAILED, message="timed out")
    invocation = EventLog.objects.get(id=event.id).invocations.get()
    assert "Timed out" in invocation.error_msg or "timed out" in invocation.error_msg
    assert invocation.duration_ms < 1500


def test_scheduled_event_arrives_on_time(worker, receiver):
    TriggerFactory(type="order_placed", url=receiver.url("/ok/later"))
    due = timezone.now() + dt.timedelta(seconds=2)
    emit("order_placed", {}, deliver_at=due)
    got = receiver.wait_for("/ok/later", timeout_s=15)[0]
    lateness = got.at - due.timestamp()
    assert 0 <= lateness < 1.0


def test_event_beyond_eta_horizon_is_sent_by_the_sweeper(worker, receiver, settings):
    TriggerFactory(type="order_placed", url=receiver.url("/ok/far"))
    settings.EVENTING = {**settings.EVENTING, "ETA_HORIZON_S": 1}
    due = timezone.now() + dt.timedelta(seconds=3)
    [event] = emit("order_placed", {}, deliver_at=due)
    assert EventLog.objects.get(id=event.id).enqueued_at is None  # no ETA message
    got = receiver.wait_for("/ok/far", timeout_s=15)[0]
    assert 0 <= got.at - due.timestamp() < 1.0


def test_lost_message_is_resent_by_the_sweeper(worker, receiver):
    TriggerFactory(type="order_placed", url=receiver.url("/ok/lost"))
    # A lost message: the row says it was sent 10 s ago, the broker holds nothing.
    ten_s_ago = timezone.now() - dt.timedelta(seconds=10)
    with transaction.atomic():
        [item] = emit_batch([EventRequest("order_placed", {}, ten_s_ago)], publish=False)
        EventLog.objects.filter(id=item.rows[0].id).update(enqueued_at=ten_s_ago)
    receiver.wait_for("/ok/lost", timeout_s=15)


def test_receiver_verifies_with_pyjwt_and_standardwebhooks(worker, receiver):
    trigger = TriggerFactory(type="order_placed", url=receiver.url("/ok/verify"))
    emit("order_placed", {"hello": "wörld"})
    got = receiver.wait_for("/ok/verify")[0]
    token = got.headers["X-SC-Token"].removeprefix("Bearer ")
    from django.conf import settings

    claims = jwt.decode(token, settings.EVENTING["SECRETS"][0], algorithms=["HS256"])
    assert claims["role"] == "SpaceCloud"
    assert claims["id"] == "eventing"
    assert claims["exp"] - claims["iat"] == 1800
    assert claims["jti"]
    payload = Webhook(trigger.signing_secret).verify(got.body, got.headers)
    assert payload["data"] == {"hello": "wörld"}
    assert got.headers["X-Eventing-Trigger"] == trigger.name
    assert got.headers["Content-Type"] == "application/json"


def test_message_lost_after_commit_is_delivered_by_the_sweeper(worker, receiver, settings):
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}
    TriggerFactory(type="order_placed", url=receiver.url("/ok/purged"))
    # The commit happens, the broker never gets (or loses) the message: as if purged.
    with mock.patch("eventing.tasks.deliver.apply_async") as publish:
        [event] = emit("order_placed", {})
    assert publish.call_count == 1
    assert EventLog.objects.get(id=event.id).enqueued_at is not None
    receiver.wait_for("/ok/purged", timeout_s=20)  # LEASE_GRACE_S is 3 s in tests
    wait_until(lambda: status_of(event.id) == EventStatus.PROCESSED, message="processed")


def test_worker_killed_mid_delivery_is_redelivered_after_the_lease(worker, receiver, settings):
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}
    TriggerFactory(
        type="order_placed", retries=2, timeout_ms=2000, url=receiver.url("/slow-once/30")
    )
    doomed = CeleryProcess(beat=False, name="doomed", queues="doomed").start()
    try:
        from eventing.tasks import deliver

        send = deliver.apply_async

        def to_doomed(args, kwargs=None, **options):
            return send(args, kwargs, queue="doomed", **options)

        with mock.patch.object(deliver, "apply_async", side_effect=to_doomed):
            [event] = emit("order_placed", {})
        receiver.wait_for("/slow-once/30", timeout_s=20)  # the doomed worker is mid-call
        assert status_of(event.id) == EventStatus.PROCESSING
    finally:
        doomed.kill()
    # Lease = timeout (2 s) + LEASE_GRACE_S (3 s); then the sweeper re-stages and resends it.
    calls = receiver.wait_for("/slow-once/30", count=2, timeout_s=30)
    assert calls[0].headers["webhook-id"] == calls[1].headers["webhook-id"]
    wait_until(lambda: status_of(event.id) == EventStatus.PROCESSED, message="processed")
    row = EventLog.objects.get(id=event.id)
    assert row.attempts == 2
    assert row.invocations.count() == 1  # the killed attempt left no record
