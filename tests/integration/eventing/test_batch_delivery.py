"""Delivering a batch of one trigger's events: claimed together, sent side by side, each row
finished with the outcome of its own attempt."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections import Counter

import pytest
from django.utils import timezone

from eventing import emit, runtime
from eventing.delivery import senders
from eventing.delivery.deliver import deliver_events
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.store import rows, trigger_cache
from tests.factories import EventTypeFactory, TriggerFactory
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender_threads(settings):
    """Give this process a sender pool of another size for the test."""

    def resize(size: int) -> None:
        settings.EVENTING = {**settings.EVENTING, "SENDER_THREADS": size}
        runtime.reset()  # the next batch makes a pool of the new size

    return resize


def staged(trigger: Trigger, count: int, **kwargs) -> list[EventLog]:
    """`count` events of the trigger's type, one row each."""
    return [emit(trigger.type, {"n": n}, **kwargs)[0] for n in range(count)]


def ids_of(events: list[EventLog]) -> list[str]:
    return [str(e.id) for e in events]


def in_flight_at_once(requests, duration_s: float) -> int:
    """Most requests the receiver was handling at the same moment (each takes `duration_s`)."""
    starts = sorted(r.at for r in requests)
    return max(sum(1 for s in starts if s <= t < s + duration_s) for t in starts)


def test_a_batch_to_a_healthy_receiver_processes_every_row_once(receiver):
    trigger = TriggerFactory(type="batch", url=receiver.url("/ok/batch"))
    events = staged(trigger, 10)

    results = deliver_events(ids_of(events), trigger.pk)

    assert set(results) == {e.id for e in events}
    assert {r.outcome.status for r in results.values()} == {EventStatus.PROCESSED}
    got = receiver.on("/ok/batch")
    assert sorted(r.headers["webhook-id"] for r in got) == sorted(ids_of(events))
    for row in EventLog.objects.filter(id__in=results):
        assert (row.status, row.attempts, row.last_status_code) == ("processed", 1, 200)
        assert row.processed_at is not None
        assert row.locked_until is None
    invocations = InvocationLog.objects.filter(event__in=results)
    assert sorted(str(i.event_id) for i in invocations) == sorted(ids_of(events))
    assert {(i.attempt, i.response_status_code, i.error_msg) for i in invocations} == {(1, 200, "")}
    assert len({i.invoked_at for i in invocations}) == 1  # claimed together
    assert senders.pool().free == senders.pool().size


def test_rows_not_claimable_are_explained_and_not_sent(receiver):
    trigger = TriggerFactory(type="mixed", url=receiver.url("/ok/mixed"))
    good, done, cancelled = staged(trigger, 3)
    [later] = staged(trigger, 1, deliver_at=timezone.now() + dt.timedelta(hours=1))
    EventLog.objects.filter(id=done.id).update(status=EventStatus.PROCESSED)
    EventLog.objects.filter(id=cancelled.id).update(status=EventStatus.CANCELLED)
    unknown = uuid.uuid4()

    results = deliver_events([*ids_of([good, done, cancelled, later]), str(unknown)], trigger.pk)

    assert results[good.id].outcome.status == EventStatus.PROCESSED
    assert results[done.id].skipped == "event is processed"
    assert results[cancelled.id].skipped == "event is cancelled"
    assert results[later.id].skipped == "not due yet"
    assert results[later.id].early_until == EventLog.objects.get(id=later.id).deliver_at
    assert results[unknown].skipped == "no such event"
    assert [r.headers["webhook-id"] for r in receiver.on("/ok/mixed")] == [str(good.id)]
    assert EventLog.objects.get(id=later.id).attempts == 0
    assert not InvocationLog.objects.exclude(event_id=good.id).exists()
    assert senders.pool().free == senders.pool().size  # the unclaimed rows' slots came back


def test_failing_rows_are_staged_for_a_retry_while_the_others_are_processed(receiver):
    trigger = TriggerFactory(
        type="flaky", retries=2, backoff_base_s=30, backoff_max_s=60, url=receiver.url("/flaky/3")
    )
    events = staged(trigger, 6)
    before = timezone.now()

    results = deliver_events(ids_of(events), trigger.pk)

    assert len(receiver.on("/flaky/3")) == 6
    retried = [pk for pk, r in results.items() if r.retry_in_s is not None]
    assert len(retried) == 3
    for row in EventLog.objects.filter(id__in=results):
        [invocation] = row.invocations.all()
        assert invocation.attempt == row.attempts == 1
        assert invocation.response_status_code == row.last_status_code
        if row.id in retried:
            assert row.status == EventStatus.STAGED
            assert row.last_status_code == 500
            assert row.remark.startswith("HTTP 500; attempt 1 of 3, next in ")
            assert "HTTP 500" in invocation.error_msg
            # backoff_base_s ±20 % from now; within the horizon, so a message goes with it
            assert before + dt.timedelta(seconds=23) < row.deliver_at
            assert row.deliver_at < timezone.now() + dt.timedelta(seconds=37)
            assert row.enqueued_at is not None
            assert row.processed_at is None
        else:
            assert row.status == EventStatus.PROCESSED
            assert row.last_status_code == 200
    assert EventLog.objects.filter(status=EventStatus.PROCESSING).count() == 0


def test_a_gone_reply_pauses_the_trigger(receiver):
    trigger = TriggerFactory(type="gone", url=receiver.url("/status/410"))
    events = staged(trigger, 3)
    results = deliver_events(ids_of(events), trigger.pk)
    assert {r.outcome.status for r in results.values()} == {EventStatus.FAILED}
    trigger.refresh_from_db()
    assert trigger.paused
    assert "410" in trigger.paused_reason
    assert set(EventLog.objects.filter(id__in=results).values_list("status", flat=True)) == {
        EventStatus.FAILED
    }
    assert InvocationLog.objects.filter(response_status_code=410).count() == 3
    # The next batch finds the trigger paused: nothing more is sent.
    [held] = staged(trigger, 1)
    assert deliver_events([str(held.id)], trigger.pk)[held.id].skipped == (
        "trigger paused or disabled"
    )
    assert len(receiver.on("/status/410")) == 3


def test_a_gone_reply_stops_the_rest_of_the_batch(receiver, sender_threads):
    sender_threads(2)  # the batch of 5 is claimed 2 at a time
    trigger = TriggerFactory(type="gone_midway", url=receiver.url("/status/410"))
    events = staged(trigger, 5)
    results = deliver_events(ids_of(events), trigger.pk)
    # The first chunk was refused with 410 and paused the trigger: the rest are held unsent.
    assert len(receiver.on("/status/410")) == 2
    assert sorted(r.skipped for r in results.values()) == [
        "",
        "",
        "trigger paused or disabled",
        "trigger paused or disabled",
        "trigger paused or disabled",
    ]
    assert EventLog.objects.filter(status=EventStatus.STAGED, enqueued_at=None).count() == 3


def test_spent_retries_emit_the_dead_letter_event(receiver):
    trigger = TriggerFactory(type="doomed", retries=0, url=receiver.url("/status/500"))
    TriggerFactory(name="catch", type=f"dlq_{trigger.name}", url=receiver.url("/ok/dlq"))
    events = staged(trigger, 3)

    results = deliver_events(ids_of(events), trigger.pk)

    assert all(r.outcome.gave_up and r.retry_in_s is None for r in results.values())
    for row in EventLog.objects.filter(id__in=results):
        assert row.status == EventStatus.FAILED
        assert row.remark == "HTTP 500 (attempt 1 of 1)"
        assert row.processed_at is not None
    dead_letters = EventLog.objects.filter(trigger_name="catch")
    assert sorted(d.payload["event_id"] for d in dead_letters) == sorted(ids_of(events))
    assert {d.type for d in dead_letters} == {f"dlq_{trigger.name}"}


def test_follow_up_events_of_a_batch_are_queued_once_per_row(receiver):
    trigger = TriggerFactory(type="asks", url=receiver.url("/reply/follow"))
    TriggerFactory(name="follow", type="followed")
    EventTypeFactory(name="followed")  # follow-ups pass `allow` rules only
    receiver.replies["/reply/follow"] = {"event": {"type": "followed", "payload": {"x": 1}}}
    events = staged(trigger, 3)

    deliver_events(ids_of(events), trigger.pk)

    assert set(EventLog.objects.filter(id__in=[e.id for e in events]).values_list("status")) == {
        (EventStatus.PROCESSED,)
    }
    follow_ups = EventLog.objects.filter(trigger_name="follow")
    assert sorted(f.source for f in follow_ups) == sorted(
        f"follow-up:{e.id}:depth=1:root={e.id}" for e in events
    )
    assert {f.payload["x"] for f in follow_ups} == {1}


@pytest.mark.parametrize("change", [{"paused": True}, {"enabled": False}])
def test_a_paused_or_disabled_trigger_sends_nothing_and_holds_its_rows(receiver, change):
    trigger = TriggerFactory(type="held", url=receiver.url("/ok/held"))
    events = staged(trigger, 3)
    assert all(e.enqueued_at is not None for e in events)
    Trigger.objects.filter(pk=trigger.pk).update(**change)
    trigger_cache.invalidate()

    results = deliver_events(ids_of(events), trigger.pk)

    assert {r.skipped for r in results.values()} == {"trigger paused or disabled"}
    assert receiver.on("/ok/held") == []
    for row in EventLog.objects.filter(id__in=results):
        assert (row.status, row.attempts, row.enqueued_at) == (EventStatus.STAGED, 0, None)


def test_a_deleted_triggers_rows_are_cancelled(receiver):
    trigger = TriggerFactory(type="orphan", url=receiver.url("/ok/orphan"))
    events = staged(trigger, 3)
    trigger_id = trigger.pk
    trigger.delete()

    results = deliver_events(ids_of(events), trigger_id)

    assert {r.skipped for r in results.values()} == {"trigger deleted"}
    assert receiver.on("/ok/orphan") == []
    for row in EventLog.objects.filter(id__in=results):
        assert row.status == EventStatus.CANCELLED
        assert row.remark == f"Trigger {trigger.name} was deleted"
        assert row.processed_at is not None


def test_a_batch_larger_than_the_sender_pool_is_claimed_in_chunks(receiver, sender_threads):
    sender_threads(2)
    trigger = TriggerFactory(type="narrow", url=receiver.url("/slow/0.3"))
    events = staged(trigger, 5)

    results = deliver_events(ids_of(events), trigger.pk)

    assert {r.outcome.status for r in results.values()} == {EventStatus.PROCESSED}
    assert len(results) == 5
    assert EventLog.objects.filter(status=EventStatus.PROCESSED).count() == 5
    # An invocation is stamped with its chunk's claim time: two, two, then the last one.
    claimed_at = Counter(InvocationLog.objects.values_list("invoked_at", flat=True))
    assert sorted(claimed_at.values()) == [1, 2, 2]
    # Two threads: two calls side by side, never three.
    assert in_flight_at_once(receiver.on("/slow/0.3"), 0.3) == 2
    assert senders.pool().free == 2  # every slot given back


def test_a_lease_lost_mid_batch_is_logged_and_not_overwritten(receiver, monkeypatch, caplog):
    trigger = TriggerFactory(type="stolen", url=receiver.url("/ok/stolen"))
    events = staged(trigger, 3)
    stolen = events[1]
    finish_many = rows.finish_many

    def lease_expired_and_taken_by_another_worker(event_ids, **kwargs):
        # Meanwhile the lease ran out and another worker claimed the row (attempt 2).
        EventLog.objects.filter(id=stolen.id).update(
            attempts=2, locked_until=timezone.now() + dt.timedelta(seconds=30)
        )
        return finish_many(event_ids, **kwargs)

    monkeypatch.setattr(rows, "finish_many", lease_expired_and_taken_by_another_worker)
    with caplog.at_level(logging.INFO, logger="eventing.delivery.deliver"):
        deliver_events(ids_of(events), trigger.pk)

    row = EventLog.objects.get(id=stolen.id)
    assert (row.status, row.attempts, row.processed_at) == (EventStatus.PROCESSING, 2, None)
    assert row.invocations.count() == 1  # the attempt made is still on record
    others = EventLog.objects.exclude(id=stolen.id).values_list("status", flat=True)
    assert set(others) == {EventStatus.PROCESSED}
    lost = [r for r in caplog.records if "lease lost" in r.getMessage()]
    assert [(r.levelno, r.event_id) for r in lost] == [(logging.WARNING, str(stolen.id))]
