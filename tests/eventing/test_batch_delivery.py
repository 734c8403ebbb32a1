"""Batch delivery: batch messages, claiming and sending a batch, the task, the setting checks."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.db import OperationalError
from django.utils import timezone

from eventing import emit, runtime
from eventing.checks import check_settings
from eventing.delivery import rows, senders
from eventing.delivery.deliver import deliver_events
from eventing.dispatch import publish as enqueue
from eventing.dispatch.sweeper import sweep
from eventing.models import EventLog, EventStatus, InvocationLog
from eventing.recording import trigger_cache
from eventing.recording.emit import EventRequest, emit_batch
from eventing.tasks import DB_RETRY_S, deliver_batch
from tests.factories import EventTypeFactory, TriggerFactory
from triggers.models import Trigger

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def inline_publishing(settings):
    """Publishes happen inline (tests/conftest.py takes the broker as up around every test)."""
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}


@pytest.fixture
def batches():
    """Captured `eventing.deliver_batch` messages."""
    with mock.patch("eventing.tasks.deliver_batch.apply_async") as apply_async:
        yield apply_async


@pytest.fixture
def singles():
    """Captured `eventing.deliver` messages."""
    with mock.patch("eventing.tasks.deliver.apply_async") as apply_async:
        yield apply_async


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


def messages(apply_async) -> list[tuple]:
    """(ids or id, trigger id, eta) of each captured message."""
    return [(*c.args[0], c.kwargs.get("eta")) for c in apply_async.call_args_list]


def due_items(count: int, trigger_id: int, deliver_at: dt.datetime) -> list[tuple]:
    return [(uuid.uuid4(), deliver_at, trigger_id) for _ in range(count)]


def in_flight_at_once(requests, duration_s: float) -> int:
    """Most requests the receiver was handling at the same moment (each takes `duration_s`)."""
    starts = sorted(r.at for r in requests)
    return max(sum(1 for s in starts if s <= t < s + duration_s) for t in starts)


# publish_due


def test_rows_due_now_go_out_in_messages_of_the_batch_size(batches, singles):
    now = timezone.now()
    items = due_items(120, 7, now - dt.timedelta(seconds=1))
    assert enqueue.publish_due(items, now) == []
    ids = [str(pk) for pk, _, _ in items]
    assert messages(batches) == [(ids[:50], 7, None), (ids[50:100], 7, None), (ids[100:], 7, None)]
    assert not singles.called


def test_a_chunk_of_one_left_over_is_a_single_deliver_message(batches, singles):
    now = timezone.now()
    items = due_items(51, 7, now)
    assert enqueue.publish_due(items, now) == []
    assert messages(batches) == [([str(pk) for pk, _, _ in items[:50]], 7, None)]
    assert messages(singles) == [(str(items[50][0]), 7, None)]


def test_triggers_and_etas_get_messages_of_their_own(batches, singles):
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
    assert sorted(messages(batches), key=str) == sorted(
        [(ids(due_a), 1, None), (ids(due_b), 2, None), (ids(later_a), 1, later)], key=str
    )
    assert messages(singles) == [(str(alone[0][0]), 1, much_later)]


def test_a_group_of_one_is_a_single_deliver_message(batches, singles):
    now = timezone.now()
    [(pk, due, trigger_id)] = items = due_items(1, 3, now + dt.timedelta(seconds=10))
    assert enqueue.publish_due(items, now) == []
    assert not batches.called
    singles.assert_called_once()
    assert singles.call_args.args[0] == (str(pk), 3)
    assert singles.call_args.kwargs["eta"] == due


def test_a_failed_publish_returns_exactly_that_chunks_ids(batches, singles):
    now = timezone.now()
    items = due_items(150, 7, now)
    batches.side_effect = [None, None, ConnectionError("broker down")]
    assert enqueue.publish_due(items, now) == [pk for pk, _, _ in items[100:]]
    assert batches.call_count == 3


def test_after_a_failed_publish_the_rest_is_not_tried_but_returned(batches, singles):
    now = timezone.now()
    items = due_items(150, 7, now) + due_items(1, 8, now)
    batches.side_effect = [None, ConnectionError("broker down")]
    assert enqueue.publish_due(items, now) == [pk for pk, _, _ in items[50:]]
    assert batches.call_count == 2  # the broker back-off skips the rest
    assert not singles.called


def test_batch_size_one_sends_one_message_per_event(batches, singles, settings):
    settings.EVENTING = {**settings.EVENTING, "DELIVERY_BATCH_SIZE": 1}
    now = timezone.now()
    items = due_items(5, 7, now)
    assert enqueue.publish_due(items, now) == []
    assert not batches.called
    assert messages(singles) == [(str(pk), 7, None) for pk, _, _ in items]


def committed_together(trigger: Trigger, count: int) -> list[EventLog]:
    """`count` events recorded in one transaction by one emit_batch (one on-commit publish)."""
    now = timezone.now()
    items = emit_batch([EventRequest(trigger.type, {"n": n}, now) for n in range(count)])
    return [item.rows[0] for item in items]


def test_a_commit_publishes_its_rows_in_batches(
    batches, singles, django_capture_on_commit_callbacks
):
    trigger = TriggerFactory(type="burst")
    with django_capture_on_commit_callbacks(execute=True):
        events = committed_together(trigger, 60)
    assert messages(batches) == [
        (ids_of(events[:50]), trigger.pk, None),
        (ids_of(events[50:]), trigger.pk, None),
    ]
    assert not singles.called


def test_a_failed_batch_unmarks_only_its_rows(batches, singles, django_capture_on_commit_callbacks):
    trigger = TriggerFactory(type="burst")
    batches.side_effect = [None, ConnectionError("broker down")]
    with django_capture_on_commit_callbacks(execute=True):
        events = committed_together(trigger, 60)
    assert batches.call_count == 2
    sent = {e.id for e in events[:50]}
    for row in EventLog.objects.filter(id__in=[e.id for e in events]):
        assert (row.enqueued_at is not None) == (row.id in sent)


def test_the_sweeper_sends_due_rows_in_batches(batches, singles):
    trigger = TriggerFactory(type="swept")
    events = staged(trigger, 3)
    EventLog.objects.update(enqueued_at=None)
    assert sweep()["enqueued"] == 3
    [(ids, trigger_id, eta)] = messages(batches)
    assert sorted(ids) == sorted(ids_of(events))
    assert (trigger_id, eta) == (trigger.pk, None)
    assert not singles.called


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
    assert publisher.stop(5)


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
    assert publisher.stop(5)


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


# deliver_events


def test_a_batch_to_a_healthy_receiver_processes_every_row_once(receiver, monkeypatch):
    trigger = TriggerFactory(type="batch", url=receiver.url("/ok/batch"))
    events = staged(trigger, 10)
    claim_many = mock.Mock(wraps=rows.claim_many)
    finish_many = mock.Mock(wraps=rows.finish_many)
    monkeypatch.setattr(rows, "claim_many", claim_many)
    monkeypatch.setattr(rows, "finish_many", finish_many)

    results = deliver_events(ids_of(events), trigger.pk)

    assert set(results) == {e.id for e in events}
    assert {r.outcome.status for r in results.values()} == {EventStatus.PROCESSED}
    assert claim_many.call_count == 1
    assert finish_many.call_count == 1  # one UPDATE for every success
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


def test_follow_up_events_of_a_batch_are_queued_once_per_row(receiver, monkeypatch):
    trigger = TriggerFactory(type="asks", url=receiver.url("/reply/follow"))
    TriggerFactory(name="follow", type="followed")
    EventTypeFactory(name="followed")  # follow-ups pass `allow` rules only
    receiver.replies["/reply/follow"] = {"event": {"type": "followed", "payload": {"x": 1}}}
    events = staged(trigger, 3)
    finish_many = mock.Mock(wraps=rows.finish_many)
    monkeypatch.setattr(rows, "finish_many", finish_many)

    deliver_events(ids_of(events), trigger.pk)

    assert finish_many.call_count == 3  # row by row, each with its follow-up
    assert set(EventLog.objects.filter(id__in=[e.id for e in events]).values_list("status")) == {
        (EventStatus.PROCESSED,)
    }
    follow_ups = EventLog.objects.filter(trigger_name="follow")
    assert sorted(f.source for f in follow_ups) == sorted(
        f"follow-up:{e.id}:depth=1" for e in events
    )
    assert {f.payload["x"] for f in follow_ups} == {1}


@pytest.mark.parametrize("change", [{"paused": True}, {"enabled": False}])
def test_a_paused_or_disabled_trigger_sends_nothing_and_holds_its_rows(receiver, change):
    trigger = TriggerFactory(type="held", url=receiver.url("/ok/held"))
    events = staged(trigger, 3)
    assert all(e.enqueued_at is not None for e in events)
    Trigger.objects.filter(pk=trigger.pk).update(**change)
    trigger_cache.invalidate()  # as a save in this process would

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


def test_a_batch_larger_than_the_sender_pool_is_claimed_in_chunks(
    receiver, sender_threads, monkeypatch
):
    sender_threads(2)
    trigger = TriggerFactory(type="narrow", url=receiver.url("/slow/0.3"))
    events = staged(trigger, 5)
    claim_many = mock.Mock(wraps=rows.claim_many)
    monkeypatch.setattr(rows, "claim_many", claim_many)

    results = deliver_events(ids_of(events), trigger.pk)

    assert {r.outcome.status for r in results.values()} == {EventStatus.PROCESSED}
    assert len(results) == 5
    assert [len(c.args[0]) for c in claim_many.call_args_list] == [2, 2, 1]
    assert EventLog.objects.filter(status=EventStatus.PROCESSED).count() == 5
    assert InvocationLog.objects.count() == 5
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


# tasks.deliver_batch


def test_the_task_counts_outcomes_and_publishes_each_retry_and_early_row_alone(
    receiver, singles, batches
):
    trigger = TriggerFactory(
        type="task", retries=2, backoff_base_s=30, backoff_max_s=60, url=receiver.url("/flaky/1")
    )
    first, second, done = staged(trigger, 3)
    EventLog.objects.filter(id=done.id).update(status=EventStatus.PROCESSED)
    [early] = staged(trigger, 1, delay_s=60)

    counts = deliver_batch(ids_of([first, second, done, early]), trigger.pk)

    assert counts == {"processed": 1, "staged": 1, "early": 1, "event is processed": 1}
    [retried] = EventLog.objects.filter(status=EventStatus.STAGED, attempts=1)
    early.refresh_from_db()
    sent = {c.args[0]: c.kwargs["eta"] for c in singles.call_args_list}
    assert set(sent) == {(str(retried.id), trigger.pk), (str(early.id), trigger.pk)}
    assert sent[(str(early.id), trigger.pk)] == early.deliver_at
    retry_eta = sent[(str(retried.id), trigger.pk)]
    assert abs((retry_eta - retried.deliver_at).total_seconds()) < 1
    assert retry_eta > timezone.now() + dt.timedelta(seconds=20)
    assert not batches.called


def test_an_eager_run_returns_the_counts_and_publishes_nothing(receiver, singles):
    trigger = TriggerFactory(
        type="eager", backoff_base_s=30, backoff_max_s=60, url=receiver.url("/status/503")
    )
    events = staged(trigger, 2)
    result = deliver_batch.apply(args=(ids_of(events), trigger.pk))
    assert result.get() == {"staged": 2}
    assert not singles.called


def test_a_database_error_makes_the_task_retry(monkeypatch):
    deliver = mock.Mock(side_effect=[OperationalError("server closed the connection"), {}])
    monkeypatch.setattr("eventing.tasks.deliver_events", deliver)
    close_old_connections = mock.Mock()
    monkeypatch.setattr("eventing.tasks.close_old_connections", close_old_connections)
    event_ids = [str(uuid.uuid4())]
    # Eager: the retry runs at once (a worker would publish it DB_RETRY_S later).
    result = deliver_batch.apply(args=(event_ids, 1))
    assert result.get() == {}
    assert deliver.call_args_list == [mock.call(event_ids, 1)] * 2
    close_old_connections.assert_called_once()


def test_in_a_worker_a_database_error_sends_the_batch_again_shortly(monkeypatch, batches):
    monkeypatch.setattr(
        "eventing.tasks.deliver_events", mock.Mock(side_effect=OperationalError("gone"))
    )
    monkeypatch.setattr("eventing.tasks.close_old_connections", mock.Mock())
    event_ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    # As a worker runs it: a request of its own, not called directly.
    deliver_batch.push_request(id="t1", called_directly=False, args=[event_ids, 1], kwargs={})
    try:
        with pytest.raises(Retry):
            deliver_batch.run(event_ids, 1)
    finally:
        deliver_batch.pop_request()
    batches.assert_called_once()
    assert batches.call_args.args[0] == (event_ids, 1)
    assert batches.call_args.kwargs["countdown"] == DB_RETRY_S


# The system check


@pytest.mark.parametrize("name", ["DELIVERY_BATCH_SIZE", "SENDER_THREADS"])
@pytest.mark.parametrize("value", [0, -1, "5", True, 2.5, None])
def test_batch_settings_must_be_whole_numbers_of_at_least_one(settings, name, value):
    settings.EVENTING = {**settings.EVENTING, name: value}
    problems = check_settings()
    assert [p.id for p in problems] == ["eventing.E004"]
    assert name in problems[0].msg


@pytest.mark.parametrize("name", ["DELIVERY_BATCH_SIZE", "SENDER_THREADS"])
def test_one_is_a_valid_batch_setting(settings, name):
    settings.EVENTING = {**settings.EVENTING, name: 1}
    assert check_settings() == []


def test_a_batch_larger_than_one_statement_can_hold_is_refused(settings):
    settings.EVENTING = {**settings.EVENTING, "DELIVERY_BATCH_SIZE": 1001}
    [problem] = check_settings()
    assert problem.id == "eventing.E004"
    assert "between 1 and 1000" in problem.msg
    settings.EVENTING = {**settings.EVENTING, "DELIVERY_BATCH_SIZE": 1000}
    assert check_settings() == []
