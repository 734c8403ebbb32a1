"""The delivery tasks: what they return, the message each next attempt gets (a retry or an
early arrival), and Celery's retry on a database error."""

from __future__ import annotations

import datetime as dt
import uuid
from unittest import mock

import pytest
from celery.exceptions import Retry
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from eventing import emit, runtime
from eventing.delivery.deliver import DeliveryResult
from eventing.maintenance.sweeper import sweep
from eventing.models import EventLog, EventStatus
from eventing.tasks import DB_RETRY_S, deliver, deliver_batch
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


def sent(deliver_messages) -> dict[tuple, dt.datetime | None]:
    """(event id, trigger id) → ETA of each captured `eventing.deliver` message."""
    return {c.args[0]: c.kwargs.get("eta") for c in deliver_messages.call_args_list}


def retried_trigger(receiver, **kwargs):
    """A trigger whose webhook answers 500 and retries 30 s (±20 %) later."""
    return TriggerFactory(
        type="task",
        retries=2,
        backoff_base_s=30,
        backoff_max_s=60,
        url=receiver.url("/status/500"),
        **kwargs,
    )


# What each next attempt gets


def test_a_retry_gets_a_message_for_exactly_the_rows_due_time(receiver, deliver_messages):
    trigger = retried_trigger(receiver)
    [event] = emit(trigger.type, {})

    assert deliver(str(event.id), trigger.pk) == EventStatus.STAGED

    row = EventLog.objects.get(id=event.id)
    assert (row.status, row.attempts) == (EventStatus.STAGED, 1)
    assert row.deliver_at > timezone.now() + dt.timedelta(seconds=20)
    assert row.enqueued_at is not None  # the row knows a message carries it
    assert sent(deliver_messages) == {(str(event.id), trigger.pk): row.deliver_at}


def test_a_retry_beyond_the_horizon_is_left_to_the_sweeper(receiver, deliver_messages, settings):
    settings.EVENTING = {**settings.EVENTING, "ETA_HORIZON_S": 10}
    trigger = retried_trigger(receiver)
    [event] = emit(trigger.type, {})

    deliver(str(event.id), trigger.pk)

    row = EventLog.objects.get(id=event.id)
    assert row.status == EventStatus.STAGED
    assert row.enqueued_at is None
    assert not deliver_messages.called
    # Nearly due, the sweeper sends it.
    assert sweep(row.deliver_at - dt.timedelta(seconds=5))["enqueued"] == 1
    assert sent(deliver_messages) == {(str(event.id), trigger.pk): row.deliver_at}


def test_an_early_message_is_sent_again_for_the_due_time(receiver, deliver_messages):
    trigger = TriggerFactory(type="task", url=receiver.url("/ok/early"))
    [event] = emit(trigger.type, {}, delay_s=60)

    assert deliver(str(event.id), trigger.pk) == "early"

    row = EventLog.objects.get(id=event.id)
    assert (row.status, row.attempts) == (EventStatus.STAGED, 0)
    assert sent(deliver_messages) == {(str(event.id), trigger.pk): row.deliver_at}
    assert receiver.on("/ok/early") == []


def test_a_retry_whose_message_fails_is_sent_by_the_next_sweep(receiver, deliver_messages):
    trigger = retried_trigger(receiver)
    [event] = emit(trigger.type, {})
    deliver_messages.side_effect = ConnectionError("broker down")

    deliver(str(event.id), trigger.pk)

    row = EventLog.objects.get(id=event.id)
    assert (row.status, row.enqueued_at) == (EventStatus.STAGED, None)
    # The broker is back (and this process stops skipping it).
    deliver_messages.side_effect = None
    deliver_messages.reset_mock()
    runtime.reset()
    assert sweep(row.deliver_at - dt.timedelta(seconds=5))["enqueued"] == 1
    assert sent(deliver_messages) == {(str(event.id), trigger.pk): row.deliver_at}


def test_the_batch_task_counts_outcomes_and_sends_each_next_attempt_alone(
    receiver, deliver_messages, batch_messages
):
    trigger = TriggerFactory(
        type="task", retries=2, backoff_base_s=30, backoff_max_s=60, url=receiver.url("/flaky/1")
    )
    first, second, done = (emit(trigger.type, {"n": n})[0] for n in range(3))
    EventLog.objects.filter(id=done.id).update(status=EventStatus.PROCESSED)
    [early] = emit(trigger.type, {}, delay_s=60)

    counts = deliver_batch([str(e.id) for e in (first, second, done, early)], trigger.pk)

    assert counts == {"processed": 1, "staged": 1, "early": 1, "event is processed": 1}
    [retried] = EventLog.objects.filter(status=EventStatus.STAGED, attempts=1)
    early.refresh_from_db()
    assert sent(deliver_messages) == {
        (str(retried.id), trigger.pk): retried.deliver_at,
        (str(early.id), trigger.pk): early.deliver_at,
    }
    assert not batch_messages.called


@pytest.mark.parametrize("eager", ["single", "batch"])
def test_an_eager_run_returns_what_happened_and_sends_nothing(receiver, deliver_messages, eager):
    trigger = retried_trigger(receiver)
    events = [emit(trigger.type, {"n": n})[0] for n in range(2)]
    if eager == "single":
        assert deliver.apply(args=(str(events[0].id), trigger.pk)).get() == "staged"
    else:
        result = deliver_batch.apply(args=([str(e.id) for e in events], trigger.pk))
        assert result.get() == {"staged": 2}
    assert not deliver_messages.called


# A database error


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_a_database_error_retries_the_task_on_a_fresh_connection(monkeypatch, error):
    deliver_events = mock.Mock(side_effect=[error("server closed the connection"), {}])
    monkeypatch.setattr("eventing.tasks.deliver_events", deliver_events)
    close_old_connections = mock.Mock()
    monkeypatch.setattr("eventing.tasks.close_old_connections", close_old_connections)
    event_ids = [str(uuid.uuid4())]
    # Eager: the retry runs at once (a worker gets it DB_RETRY_S later at most).
    assert deliver_batch.apply(args=(event_ids, 1)).get() == {}
    assert deliver_events.call_args_list == [mock.call(event_ids, 1)] * 2
    close_old_connections.assert_called_once()


def test_the_single_task_retries_on_a_database_error_too(monkeypatch):
    deliver_event = mock.Mock(
        side_effect=[OperationalError("gone"), DeliveryResult(skipped="no such event")]
    )
    monkeypatch.setattr("eventing.tasks.deliver_event", deliver_event)
    monkeypatch.setattr("eventing.tasks.close_old_connections", mock.Mock())
    event_id = str(uuid.uuid4())
    assert deliver.apply(args=(event_id, 1)).get() == "no such event"
    assert deliver_event.call_args_list == [mock.call(event_id, 1)] * 2


@pytest.mark.parametrize("task", [deliver, deliver_batch])
def test_in_a_worker_a_database_error_sends_the_message_again_shortly(monkeypatch, task):
    monkeypatch.setattr("eventing.tasks.deliver_event", mock.Mock(side_effect=OperationalError()))
    monkeypatch.setattr("eventing.tasks.deliver_events", mock.Mock(side_effect=OperationalError()))
    args = [str(uuid.uuid4()), 1] if task is deliver else [[str(uuid.uuid4())], 1]
    with mock.patch.object(task, "apply_async") as again:
        # As a worker runs it: a request of its own, not called directly.
        task.push_request(id="t1", called_directly=False, args=args, kwargs={}, retries=0)
        try:
            with pytest.raises(Retry):
                task.run(*args)
        finally:
            task.pop_request()
    again.assert_called_once()
    assert again.call_args.args[0] == tuple(args)
    assert 0 <= again.call_args.kwargs["countdown"] <= DB_RETRY_S
