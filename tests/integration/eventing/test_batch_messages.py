"""Batch messages: rows of one trigger due together share one `eventing.deliver_batch` message,
whether a commit, the publisher thread or the sweeper sends them."""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest
from django.utils import timezone

from eventing import emit, runtime
from eventing.dispatch import publish as enqueue
from eventing.maintenance.sweeper import sweep
from eventing.models import EventLog
from eventing.recording.emit import EventRequest, emit_batch
from tests.factories import TriggerFactory
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


def messages(apply_async) -> list[tuple]:
    """(ids or id, trigger id, eta) of each captured message (no ETA: due now)."""
    return [(*c.args[0], c.kwargs.get("eta")) for c in apply_async.call_args_list]


def due_items(count: int, trigger_id: int, deliver_at: dt.datetime) -> list[tuple]:
    return [(uuid.uuid4(), deliver_at, trigger_id) for _ in range(count)]


def ids_of(events: list[EventLog]) -> list[str]:
    return [str(e.id) for e in events]


def committed_together(trigger: Trigger, count: int) -> list[EventLog]:
    """`count` events recorded in one transaction by one emit_batch (one on-commit publish)."""
    now = timezone.now()
    items = emit_batch([EventRequest(trigger.type, {"n": n}, now) for n in range(count)])
    return [item.rows[0] for item in items]


# publish_due


def test_rows_due_now_go_out_in_messages_of_the_batch_size(batch_messages, deliver_messages):
    now = timezone.now()
    items = due_items(120, 7, now - dt.timedelta(seconds=1))
    assert enqueue.publish_due(items, now) == []
    ids = [str(pk) for pk, _, _ in items]
    assert messages(batch_messages) == [
        (ids[:50], 7, None),
        (ids[50:100], 7, None),
        (ids[100:], 7, None),
    ]
    assert not deliver_messages.called


def test_a_chunk_of_one_left_over_is_a_single_deliver_message(batch_messages, deliver_messages):
    now = timezone.now()
    items = due_items(51, 7, now)
    assert enqueue.publish_due(items, now) == []
    assert messages(batch_messages) == [([str(pk) for pk, _, _ in items[:50]], 7, None)]
    assert messages(deliver_messages) == [(str(items[50][0]), 7, None)]


def test_triggers_and_etas_get_messages_of_their_own(batch_messages, deliver_messages):
    now = timezone.now()
    later, much_later = now + dt.timedelta(seconds=30), now + dt.timedelta(seconds=60)
    due_a = due_items(2, 1, now - dt.timedelta(seconds=5)) + due_items(1, 1, now)
    due_b = due_items(2, 2, now - dt.timedelta(seconds=1))
    later_a = due_items(2, 1, later)
    alone = due_items(1, 1, much_later)
    items = due_a + due_b + later_a + alone
    assert enqueue.publish_due(items, now) == []

    def ids(group):
        return [str(pk) for pk, _, _ in group]

    # Rows already due share a message whatever their due time; later ones carry their ETA.
    assert sorted(messages(batch_messages), key=str) == sorted(
        [(ids(due_a), 1, None), (ids(due_b), 2, None), (ids(later_a), 1, later)], key=str
    )
    assert messages(deliver_messages) == [(str(alone[0][0]), 1, much_later)]


def test_a_group_of_one_is_a_single_deliver_message(batch_messages, deliver_messages):
    now = timezone.now()
    [(pk, due, trigger_id)] = items = due_items(1, 3, now + dt.timedelta(seconds=10))
    assert enqueue.publish_due(items, now) == []
    assert not batch_messages.called
    assert messages(deliver_messages) == [(str(pk), 3, due)]


def test_a_failed_publish_returns_exactly_that_chunks_ids(batch_messages, deliver_messages):
    now = timezone.now()
    items = due_items(150, 7, now)
    batch_messages.side_effect = [None, None, ConnectionError("broker down")]
    assert enqueue.publish_due(items, now) == [pk for pk, _, _ in items[100:]]
    assert batch_messages.call_count == 3


def test_after_a_failed_publish_the_rest_is_not_tried_but_returned(
    batch_messages, deliver_messages
):
    now = timezone.now()
    items = due_items(150, 7, now) + due_items(1, 8, now)
    batch_messages.side_effect = [None, ConnectionError("broker down")]
    assert enqueue.publish_due(items, now) == [pk for pk, _, _ in items[50:]]
    assert batch_messages.call_count == 2  # the broker back-off skips the rest
    assert not deliver_messages.called


def test_batch_size_one_sends_one_message_per_event(batch_messages, deliver_messages, settings):
    settings.EVENTING = {**settings.EVENTING, "DELIVERY_BATCH_SIZE": 1}
    now = timezone.now()
    items = due_items(5, 7, now)
    assert enqueue.publish_due(items, now) == []
    assert not batch_messages.called
    assert messages(deliver_messages) == [(str(pk), 7, None) for pk, _, _ in items]


# On commit, and from the sweeper


def test_a_commit_publishes_its_rows_in_batches(
    batch_messages, deliver_messages, django_capture_on_commit_callbacks
):
    trigger = TriggerFactory(type="burst")
    with django_capture_on_commit_callbacks(execute=True):
        events = committed_together(trigger, 60)
    assert messages(batch_messages) == [
        (ids_of(events[:50]), trigger.pk, None),
        (ids_of(events[50:]), trigger.pk, None),
    ]
    assert not deliver_messages.called


def test_a_failed_batch_unmarks_only_its_rows(
    batch_messages, deliver_messages, django_capture_on_commit_callbacks
):
    trigger = TriggerFactory(type="burst")
    batch_messages.side_effect = [None, ConnectionError("broker down")]
    with django_capture_on_commit_callbacks(execute=True):
        events = committed_together(trigger, 60)
    assert batch_messages.call_count == 2
    sent = {e.id for e in events[:50]}
    for row in EventLog.objects.filter(id__in=[e.id for e in events]):
        assert (row.enqueued_at is not None) == (row.id in sent)


def test_the_sweeper_sends_due_rows_in_batches(batch_messages, deliver_messages):
    trigger = TriggerFactory(type="swept")
    events = [emit(trigger.type, {"n": n})[0] for n in range(3)]
    EventLog.objects.update(enqueued_at=None)
    assert sweep()["enqueued"] == 3
    [(ids, trigger_id, eta)] = messages(batch_messages)
    assert sorted(ids) == sorted(ids_of(events))
    assert (trigger_id, eta) == (trigger.pk, None)
    assert not deliver_messages.called


# The publisher thread


def test_the_publisher_merges_commits_handed_over_meanwhile(monkeypatch):
    first_round = threading.Event()
    go_on = threading.Event()
    rounds = []

    def publish_rows(rows, using):
        rounds.append(list(rows))
        first_round.set()
        go_on.wait(5)

    monkeypatch.setattr(enqueue, "publish_rows", publish_rows)
    publisher = enqueue.Publisher()
    publisher.submit(["a"], "default")
    assert first_round.wait(5)
    # While the first round publishes, three more commits are handed over.
    publisher.submit(["b"], "default")
    publisher.submit(["c", "d"], "default")
    publisher.submit(["e"], "other")
    go_on.set()
    assert publisher.flush(5)
    assert rounds == [["a"], ["b", "c", "d"], ["e"]]


def test_back_to_back_commits_wait_for_each_other_an_isolated_one_does_not(monkeypatch, settings):
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_LINGER_MS": 1500}
    rounds = []
    monkeypatch.setattr(enqueue, "publish_rows", lambda rows, using: rounds.append(list(rows)))
    publisher = enqueue.Publisher()
    publisher.submit(["a"], "default")
    # Nothing came before it: published without waiting out the linger.
    assert publisher.flush(0.75)
    # The next commit comes right after: the publisher waits for more, and gets one.
    publisher.submit(["b"], "default")
    publisher.submit(["c"], "default")
    assert publisher.flush(5)
    assert rounds == [["a"], ["b", "c"]]


def test_stopping_the_runtime_publishes_what_was_handed_over_then_ends_the_thread(monkeypatch):
    rounds = []
    monkeypatch.setattr(enqueue, "publish_rows", lambda rows, using: rounds.append(list(rows)))
    publisher = enqueue.publisher()
    publisher.submit(["a"], "default")
    publisher.submit(["b", "c"], "default")
    assert runtime.stop(10)
    assert sorted(sum(rounds, [])) == ["a", "b", "c"]
    assert not publisher.thread.is_alive()
    assert enqueue.publisher() is not publisher  # used again: a new one starts
