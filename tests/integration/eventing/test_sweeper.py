"""The sweeper: expired leases, never-sent and lost rows, paused triggers."""

import datetime as dt
import logging

import pytest
from django.utils import timezone

from eventing import emit, runtime
from eventing.maintenance.sweeper import sweep
from eventing.models import EventLog, EventStatus, Heartbeat
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


def sent_ids(messages) -> set[str]:
    return {c.args[0][0] for c in messages.call_args_list}


def test_far_future_rows_are_sent_when_nearly_due(message_per_event):
    TriggerFactory(type="order")
    now = timezone.now()
    [row] = emit("order", {}, deliver_at=now + dt.timedelta(hours=2))
    assert sweep(now)["enqueued"] == 0
    assert sweep(now + dt.timedelta(hours=2) - dt.timedelta(seconds=5))["enqueued"] == 1
    assert sent_ids(message_per_event) == {str(row.id)}
    row.refresh_from_db()
    assert row.enqueued_at is not None
    # Sent once: the next pass leaves it alone.
    assert sweep(now + dt.timedelta(hours=2) - dt.timedelta(seconds=4))["enqueued"] == 0


def test_lost_message_is_sent_again_after_the_grace(message_per_event):
    TriggerFactory(type="order")
    [row] = emit("order", {})
    now = timezone.now()
    assert sweep(now)["enqueued"] == 0  # its message is (presumably) on the way
    later = now + dt.timedelta(seconds=10)  # LEASE_GRACE_S is 3 in tests
    assert sweep(later)["enqueued"] == 1
    assert str(row.id) in sent_ids(message_per_event)


def test_expired_lease_returns_the_row_to_staged(message_per_event):
    TriggerFactory(type="order", retries=2)
    [row] = emit("order", {})
    now = timezone.now()
    EventLog.objects.filter(id=row.id).update(
        status=EventStatus.PROCESSING, attempts=1, locked_until=now - dt.timedelta(seconds=1)
    )
    report = sweep(now)
    assert report["released"] == 1
    row.refresh_from_db()
    assert row.status == EventStatus.STAGED
    assert "lease expired" in row.remark
    assert report["enqueued"] == 1  # and is sent again in the same pass


def test_expired_lease_on_the_last_attempt_fails_with_dead_letter(message_per_event):
    trigger = TriggerFactory(type="order", retries=0)
    TriggerFactory(name="catch", type=f"dlq_{trigger.name}")
    [row] = emit("order", {})
    now = timezone.now()
    EventLog.objects.filter(id=row.id).update(
        status=EventStatus.PROCESSING, attempts=1, locked_until=now - dt.timedelta(seconds=1)
    )
    sweep(now)
    row.refresh_from_db()
    assert row.status == EventStatus.FAILED
    assert EventLog.objects.filter(trigger_name="catch").count() == 1


def test_paused_trigger_rows_are_held(message_per_event):
    trigger = TriggerFactory(type="order", paused=True)
    [row] = emit("order", {})
    EventLog.objects.filter(id=row.id).update(enqueued_at=None)
    assert sweep()["enqueued"] == 0
    trigger.paused = False
    trigger.save()
    assert sweep()["enqueued"] == 1


def test_failed_publish_leaves_the_row_for_the_next_pass(message_per_event):
    TriggerFactory(type="order")
    [row] = emit("order", {}, deliver_at=timezone.now() + dt.timedelta(hours=1))
    message_per_event.side_effect = ConnectionError("broker down")
    now = timezone.now() + dt.timedelta(hours=1)
    assert sweep(now)["enqueued"] == 0
    assert EventLog.objects.get(id=row.id).enqueued_at is None
    message_per_event.side_effect = None
    # The process skips the broker for BROKER_BACKOFF_S after a failure; let that pass.
    runtime.reset()
    assert sweep(now)["enqueued"] == 1


def test_sweep_records_a_heartbeat(message_per_event):
    sweep()
    beat = Heartbeat.objects.get(name="sweep")
    assert timezone.now() - beat.at < dt.timedelta(seconds=5)
    assert set(beat.detail) >= {"released", "enqueued"}


def test_only_a_sweep_that_did_something_logs_a_line(message_per_event, caplog):
    TriggerFactory(type="order")
    now = timezone.now()
    emit("order", {}, deliver_at=now + dt.timedelta(hours=2))
    with caplog.at_level(logging.INFO, logger="eventing.maintenance.sweeper"):
        sweep(now)  # nothing due yet
        assert [r for r in caplog.records if r.name == "eventing.maintenance.sweeper"] == []
        sweep(now + dt.timedelta(hours=2))
    [line] = [r.getMessage() for r in caplog.records if r.name == "eventing.maintenance.sweeper"]
    assert line == "sweep released=0 enqueued=1 intents=0 expanded=0"
