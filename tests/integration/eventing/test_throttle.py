"""Endpoint protection: rows over a trigger's max_in_flight or rate_limit wait as staged,
rescheduled a little later, without using attempts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import transaction
from django.utils import timezone

from eventing import emit
from eventing.delivery.deliver import deliver_event, deliver_events, send_next_attempt
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.waiting import wait_until

pytestmark = pytest.mark.django_db


def burst(event_type: str, count: int) -> list[EventLog]:
    with transaction.atomic():
        return [emit(event_type, {"n": n})[0] for n in range(count)]


def test_rows_over_max_in_flight_wait_staged_without_using_attempts(receiver):
    TriggerFactory(type="capped", max_in_flight=2, url=receiver.url("/ok/capped"))
    events = burst("capped", 5)
    # Two are already under way (another worker's): none of the others may start.
    EventLog.objects.filter(id__in=[e.id for e in events[:2]]).update(
        status=EventStatus.PROCESSING, locked_until=timezone.now() + dt.timedelta(minutes=1)
    )
    started = timezone.now()

    results = deliver_events([str(e.id) for e in events[2:]], events[0].trigger_id)

    assert {r.skipped for r in results.values()} == {"held back: max_in_flight reached"}
    assert receiver.on("/ok/capped") == []
    held = EventLog.objects.filter(id__in=[e.id for e in events[2:]])
    assert set(held.values_list("status", "attempts")) == {(EventStatus.STAGED, 0)}
    # Tried again a little later, each with a message for that time.
    assert all(row.deliver_at > started for row in held)
    assert all(r.next_message_at is not None for r in results.values())


def test_max_in_flight_lets_through_only_the_free_slots(receiver):
    TriggerFactory(type="capped", max_in_flight=3, url=receiver.url("/ok/capped"))
    events = burst("capped", 8)

    results = deliver_events([str(e.id) for e in events], events[0].trigger_id)

    outcomes = [r.outcome.status for r in results.values() if r.outcome is not None]
    assert outcomes == [EventStatus.PROCESSED] * 3
    assert len(receiver.on("/ok/capped")) == 3
    statuses = EventLog.objects.values_list("status", "attempts")
    assert sorted(statuses) == sorted([("processed", 1)] * 3 + [("staged", 0)] * 5)


def test_rows_over_the_rate_limit_are_spread_at_the_rate(receiver):
    TriggerFactory(type="limited", rate_limit=2, url=receiver.url("/ok/limited"))
    events = burst("limited", 6)
    started = timezone.now()

    results = deliver_events([str(e.id) for e in events], events[0].trigger_id)

    # A full bucket holds one token (smooth), and half a second more may be taken ahead (one,
    # sent at its turn): the other four wait theirs.
    assert len(receiver.on("/ok/limited")) == 2
    held = [r for r in results.values() if r.skipped == "held back: rate_limit reached"]
    assert len(held) == 4
    waits = sorted((r.next_message_at - started).total_seconds() for r in held)
    assert waits[0] >= 0.9
    assert waits[-1] >= 2.4  # the last waits past the debt and four tokens' worth
    assert set(EventLog.objects.filter(status="staged").values_list("attempts", flat=True)) == {0}


def test_held_rows_are_delivered_later_with_their_first_attempt(receiver, publish_inline):
    TriggerFactory(type="limited", rate_limit=20, url=receiver.url("/ok/limited"))
    events = burst("limited", 30)
    ids = [str(e.id) for e in events]

    def deliver_due() -> bool:
        # What the worker does with the messages: each held row comes back when due.
        deliver_events(ids, events[0].trigger_id)
        return EventLog.objects.filter(status="processed").count() == len(ids)

    wait_until(deliver_due, timeout_s=20, message="every event delivered")
    assert set(EventLog.objects.values_list("attempts", flat=True)) == {1}
    got = sorted(r.headers["webhook-id"] for r in receiver.on("/ok/limited"))
    assert got == sorted(ids)


def test_an_unthrottled_trigger_claims_the_whole_batch(receiver):
    TriggerFactory(type="free", url=receiver.url("/ok/free"))
    events = burst("free", 10)
    results = deliver_events([str(e.id) for e in events], events[0].trigger_id)
    assert {r.outcome.status for r in results.values()} == {EventStatus.PROCESSED}


def test_a_single_message_over_the_limit_gets_a_message_for_later(receiver, deliver_messages):
    TriggerFactory(type="capped", max_in_flight=1, url=receiver.url("/ok/capped"))
    first, second = burst("capped", 2)
    EventLog.objects.filter(id=first.id).update(
        status=EventStatus.PROCESSING, locked_until=timezone.now() + dt.timedelta(minutes=1)
    )
    deliver_messages.reset_mock()

    result = deliver_event(str(second.id))

    assert result.skipped == "held back: max_in_flight reached"
    assert send_next_attempt(str(second.id), result, second.trigger_id)
    [call] = deliver_messages.call_args_list
    assert call.args[0][0] == str(second.id)
    assert call.kwargs["eta"] == result.next_message_at
