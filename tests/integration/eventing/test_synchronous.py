"""Synchronous delivery is one behaviour, whichever door it comes through.

The API's `isSynchronous` queueing, its trigger test, Mission Control's queue page and its
"Send a test event" action all deliver in the request through eventing.delivery.synchronous:
the attempt made there gets no broker message, and a failed one gets exactly one, due when
the row's retry is due, as a worker sends it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from unittest import mock

import pytest
from celery import current_app
from django.urls import reverse
from rest_framework.test import APIClient

from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import EventTypeFactory, TriggerFactory

# Committed for real, as in production: each commit sends its messages at once, before the
# request's own attempt (a test transaction would only send them at the end).
pytestmark = pytest.mark.django_db(transaction=True)

QUEUE_URL = "/v1/api/default/eventing/queue"


@pytest.fixture
def broker_messages(settings):
    """Every task message sent to the broker (published inline), as (task name, args, eta)."""
    settings.EVENTING = {**settings.EVENTING, "PUBLISH_IN_BACKGROUND": False}
    sent: list[tuple[str, tuple, dt.datetime | None]] = []

    def send_task(name, args=None, kwargs=None, **options):
        sent.append((name, tuple(args or ()), options.get("eta")))

    with mock.patch.object(current_app._get_current_object(), "send_task", send_task):
        yield sent


def etas_for(messages, event_id) -> list[dt.datetime | None]:
    """The ETAs of the messages that would deliver `event_id` (alone or in a batch)."""
    etas = []
    for name, args, eta in messages:
        ids = args[0] if name == "eventing.deliver_batch" else [args[0]]
        if str(event_id) in {str(pk) for pk in ids}:
            etas.append(eta)
    return etas


def api_queue(admin_client, admin_user, trigger) -> None:
    """Space Cloud's endpoint with isSynchronous."""
    body = {"type": trigger.type, "payload": {"n": 1}, "isSynchronous": True}
    APIClient().post(QUEUE_URL, body, format="json")


def api_trigger_test(admin_client, admin_user, trigger) -> None:
    """`POST /api/eventing/triggers/<name>/test/`."""
    client = APIClient()
    client.force_authenticate(admin_user)
    response = client.post(f"/api/eventing/triggers/{trigger.name}/test/", {}, format="json")
    assert response.status_code == 200, response.content


def mission_control_queue_page(admin_client, admin_user, trigger) -> None:
    """Mission Control's queue page with "synchronous" ticked."""
    response = admin_client.post(
        reverse("mission_control:queue_event"),
        {"type": trigger.type, "payload": '{"n": 1}', "synchronous": "on"},
    )
    assert response.status_code == 200


def mission_control_test_event(admin_client, admin_user, trigger) -> None:
    """Mission Control's "Send a test event" action on the trigger list."""
    response = admin_client.post(
        reverse("mission_control:triggers_trigger_changelist"),
        {"action": "send_test_event", "_selected_action": [trigger.pk]},
    )
    assert response.status_code == 302


ENTRY_POINTS: list[Callable] = [
    api_queue,
    api_trigger_test,
    mission_control_queue_page,
    mission_control_test_event,
]


@pytest.fixture
def deliver_through(admin_client, admin_user, receiver, broker_messages):
    """Queue an event for one trigger at `path` through an entry point."""

    def run(entry_point: Callable, path: str) -> EventLog:
        EventTypeFactory(name="order_placed", queue_rule="allow")
        trigger = TriggerFactory(type="order_placed", url=receiver.url(path), retries=2)
        entry_point(admin_client, admin_user, trigger)
        return EventLog.objects.get(trigger=trigger)

    return run


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_a_failed_attempt_gets_one_message_due_with_its_retry(
    entry_point, deliver_through, receiver, broker_messages
):
    event = deliver_through(entry_point, "/status/500")
    assert len(receiver.on("/status/500")) == 1  # delivered in the request
    assert (event.status, event.attempts) == (EventStatus.STAGED, 1)
    assert InvocationLog.objects.filter(event=event).count() == 1
    # Exactly the message a worker sends for a retry: one, due when the row is (backoff from
    # 0.2 s), not a message held back for a minute nor a second copy.
    [eta] = etas_for(broker_messages, event.id)
    assert eta is not None
    assert event.deliver_at <= eta < event.deliver_at + dt.timedelta(seconds=1)


@pytest.mark.parametrize("entry_point", ENTRY_POINTS, ids=lambda f: f.__name__)
def test_a_delivered_event_gets_no_message(entry_point, deliver_through, receiver, broker_messages):
    event = deliver_through(entry_point, "/ok")
    assert len(receiver.on("/ok")) == 1
    assert event.status == EventStatus.PROCESSED
    assert event.deliver_at <= event.processed_at  # due now, not held for later
    assert etas_for(broker_messages, event.id) == []
