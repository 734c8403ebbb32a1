"""Ordered delivery per key: one row of a key at a time, in recorded order, other keys free."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from eventing import emit
from eventing.delivery.deliver import deliver_event, deliver_events
from eventing.delivery.ordering import BLOCKED
from eventing.dispatch.operations import cancel_events
from eventing.dispatch.publish import publish_rows
from eventing.maintenance.sweeper import sweep
from eventing.models import EventLog, EventStatus
from eventing.store.ordering import head_of_key
from tests.factories import TriggerFactory
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def sent_ids(messages) -> list[str]:
    """Event ids of captured `eventing.deliver` messages, in the order sent."""
    return [c.args[0][0] for c in messages.call_args_list]


def ordered_trigger(receiver, path: str = "/ok/ordered", **kwargs) -> Trigger:
    return TriggerFactory(
        type="order_changed", ordering_key="order.id", url=receiver.url(path), **kwargs
    )


def refreshed(event: EventLog) -> EventLog:
    event.refresh_from_db()
    return event


def test_the_key_is_the_value_at_the_triggers_payload_path(receiver):
    ordered_trigger(receiver)
    TriggerFactory(type="order_changed", url=receiver.url("/ok/unordered"))
    rows = emit("order_changed", {"order": {"id": 42}})
    assert sorted(row.ordering_key or "" for row in rows) == ["", "42"]
    # A payload without the path is unordered.
    assert {row.ordering_key for row in emit("order_changed", {"other": 1})} == {None}
    assert {row.ordering_key for row in emit("order_changed", {"order": {"id": "a"}})} == {
        "a",
        None,
    }


@pytest.mark.parametrize("path", ["new..id", ".pk", "pk.", "new id", "new/id"])
def test_an_ordering_key_that_is_not_a_path_is_refused_naming_the_field(path):
    trigger = TriggerFactory.build(type="order_changed", ordering_key=path)
    with pytest.raises(ValidationError) as caught:
        trigger.full_clean()
    assert "ordering_key" in caught.value.message_dict


def test_a_key_is_delivered_one_event_at_a_time_in_recorded_order(receiver, message_per_event):
    ordered_trigger(receiver)
    with transaction.atomic():
        first, second, third = (
            emit("order_changed", {"order": {"id": 7}, "n": n})[0] for n in range(3)
        )
    # The later ones are not claimable while the first is unfinished: they are parked.
    assert deliver_event(str(third.id)).skipped == BLOCKED
    assert deliver_event(str(second.id)).skipped == BLOCKED
    assert refreshed(second).status == EventStatus.STAGED
    assert refreshed(second).enqueued_at is None
    message_per_event.reset_mock()

    assert deliver_event(str(first.id)).outcome.status == EventStatus.PROCESSED
    # Its key's next row is sent at once, and only that one.
    assert sent_ids(message_per_event) == [str(second.id)]
    assert deliver_event(str(second.id)).outcome.status == EventStatus.PROCESSED
    assert sent_ids(message_per_event)[-1] == str(third.id)
    assert deliver_event(str(third.id)).outcome.status == EventStatus.PROCESSED
    got = [r.json()["data"]["n"] for r in receiver.on("/ok/ordered")]
    assert got == [0, 1, 2]


def test_a_batch_claims_only_the_first_row_of_each_key(receiver, message_per_event):
    ordered_trigger(receiver)
    with transaction.atomic():
        events = [emit("order_changed", {"order": {"id": n % 3}, "n": n})[0] for n in range(9)]

    results = deliver_events([str(e.id) for e in events], events[0].trigger_id)

    processed = [e.id for e in events if results[e.id].outcome is not None]
    assert processed == [e.id for e in events[:3]]  # the head of keys 0, 1 and 2
    assert {results[e.id].skipped for e in events[3:]} == {BLOCKED}
    # Each finished head sent its key's next row.
    assert sorted(sent_ids(message_per_event)[-3:]) == sorted(str(e.id) for e in events[3:6])


def test_a_failing_head_holds_only_its_own_key(receiver, message_per_event):
    trigger = ordered_trigger(receiver, "/status/500")
    with transaction.atomic():
        head, behind = (emit("order_changed", {"order": {"id": 1}, "n": n})[0] for n in range(2))
        [other] = emit("order_changed", {"order": {"id": 2}})

    assert deliver_event(str(head.id)).outcome.status == EventStatus.STAGED  # a retry
    assert deliver_event(str(behind.id)).skipped == BLOCKED
    assert deliver_event(str(other.id)).outcome is not None  # another key flows
    assert head_of_key(refreshed(behind)).id == head.id
    assert head_of_key(refreshed(head)) is None
    # The sweeper does not send what waits behind a head, however late.
    later = timezone.now() + dt.timedelta(minutes=5)
    Trigger.objects.filter(pk=trigger.pk).update(paused=False)
    message_per_event.reset_mock()
    sweep(later)
    assert str(behind.id) not in sent_ids(message_per_event)
    assert str(head.id) in sent_ids(message_per_event)


def test_cancelling_the_head_sends_the_next_row_of_its_key(
    receiver, message_per_event, django_capture_on_commit_callbacks
):
    ordered_trigger(receiver)
    with transaction.atomic():
        head, behind = (emit("order_changed", {"order": {"id": 1}, "n": n})[0] for n in range(2))
    assert deliver_event(str(behind.id)).skipped == BLOCKED
    message_per_event.reset_mock()

    with django_capture_on_commit_callbacks(execute=True):
        assert cancel_events([head.id]) == 1

    assert sent_ids(message_per_event) == [str(behind.id)]
    assert deliver_event(str(behind.id)).outcome.status == EventStatus.PROCESSED


def test_the_sweeper_sends_a_parked_row_once_its_head_finished(receiver, message_per_event):
    ordered_trigger(receiver)
    with transaction.atomic():
        head, behind = (emit("order_changed", {"order": {"id": 1}, "n": n})[0] for n in range(2))
    assert deliver_event(str(behind.id)).skipped == BLOCKED
    message_per_event.reset_mock()
    assert sweep()["enqueued"] == 0  # still behind its head
    # The head finishes without sending the next (as if its worker died right after).
    EventLog.objects.filter(id=head.id).update(status=EventStatus.PROCESSED)

    assert sweep()["enqueued"] == 1
    assert sent_ids(message_per_event) == [str(behind.id)]


def test_unordered_rows_of_one_trigger_are_claimed_together(receiver, message_per_event):
    TriggerFactory(type="order_changed", url=receiver.url("/ok/plain"))
    with transaction.atomic():
        events = [emit("order_changed", {"order": {"id": 1}, "n": n})[0] for n in range(5)]
    results = deliver_events([str(e.id) for e in events], events[0].trigger_id)
    assert {r.outcome.status for r in results.values()} == {EventStatus.PROCESSED}


def test_commits_published_together_send_only_the_first_row_of_each_key(
    receiver, message_per_event
):
    ordered_trigger(receiver)
    with transaction.atomic():
        events = [emit("order_changed", {"order": {"id": n % 2}, "n": n})[0] for n in range(6)]
        [unordered] = emit("order_changed", {"n": "no key"})
    message_per_event.reset_mock()

    # What the publisher thread does with every commit handed over in one round.
    publish_rows([*reversed(events), unordered], using="default")

    # The others wait behind these two anyway; each finishing head sends its next.
    assert sorted(sent_ids(message_per_event)) == sorted(
        str(e.id) for e in (events[0], events[1], unordered)
    )
    deliver_event(str(events[0].id))
    assert sent_ids(message_per_event)[-1] == str(events[2].id)
