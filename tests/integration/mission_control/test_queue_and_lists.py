"""The queue page's logic, the trigger list's 24 h figures and the event list's filters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from eventing.models import EventLog, EventStatus, Heartbeat
from mission_control.views import queue_event
from tests.factories import EventTypeFactory, TriggerFactory
from tests.support.mission_control import make_event

pytestmark = pytest.mark.django_db
EVENTS = "mission_control:eventing_eventlog_changelist"


def test_queue_event_asynchronous_returns_ids():
    TriggerFactory(name="a", type="order_placed")
    TriggerFactory(name="b", type="order_placed")
    rows = queue_event({"type": "order_placed", "payload": {"n": 1}, "delay_s": 30})
    assert sorted(r["trigger"] for r in rows) == ["a", "b"]
    events = EventLog.objects.filter(id__in=[r["id"] for r in rows])
    assert all(e.status == EventStatus.STAGED for e in events)
    assert all(e.deliver_at > timezone.now() + dt.timedelta(seconds=25) for e in events)


def test_queue_event_at_a_naive_time_uses_the_server_zone():
    TriggerFactory(type="order_placed")
    at = (timezone.localtime() + dt.timedelta(hours=2)).replace(tzinfo=None, microsecond=0)
    [row] = queue_event({"type": "order_placed", "payload": {}, "deliver_at": at})
    due = EventLog.objects.get(id=row["id"]).deliver_at
    assert timezone.localtime(due).replace(tzinfo=None) == at


def test_queue_event_synchronous_shows_the_reply(receiver):
    TriggerFactory(type="order_placed", url=receiver.url("/reply/sync"))
    receiver.replies["/reply/sync"] = {"result": 42}
    [row] = queue_event({"type": "order_placed", "payload": {"n": 1}, "synchronous": True})
    assert row["status"] == EventStatus.PROCESSED
    assert row["status_code"] == 200
    assert row["reply"] == '{"result": 42}'
    assert row["error"] == ""


def test_queue_page_posts_and_lists_the_events(admin_client):
    EventTypeFactory(name="order_placed")
    TriggerFactory(type="order_placed")
    response = admin_client.post(
        reverse("mission_control:queue_event"),
        {"type": "order_placed", "payload": '{"n": 2}', "delay_s": "60"},
    )
    assert response.status_code == 200
    event = EventLog.objects.get()
    assert str(event.id) in response.content.decode()
    assert event.payload == {"n": 2}


def test_queue_page_without_a_matching_trigger_says_so(admin_client):
    EventTypeFactory(name="lonely")
    response = admin_client.post(
        reverse("mission_control:queue_event"), {"type": "lonely", "payload": "{}"}
    )
    assert "No enabled trigger matches this type" in response.content.decode()


def test_queue_page_offers_no_dead_letter_type_and_refuses_one(admin_client):
    EventTypeFactory(name="order_placed")
    EventTypeFactory(name="DLQ_declared")
    TriggerFactory(name="on_dead_letters", type="dlq_orders_hook")
    page = admin_client.get(reverse("mission_control:queue_event"))
    offered = [value for value, _ in page.context["form"].fields["type"].choices]
    assert offered == ["order_placed"]
    refused = admin_client.post(
        reverse("mission_control:queue_event"), {"type": "dlq_orders_hook", "payload": "{}"}
    )
    assert "dlq_orders_hook is not one of the available choices" in refused.content.decode()
    assert not EventLog.objects.exists()


def test_trigger_list_shows_24h_figures(admin_client):
    trigger = TriggerFactory(name="busy")
    for _ in range(3):
        make_event(trigger, EventStatus.PROCESSED)
    make_event(trigger, EventStatus.FAILED)
    make_event(trigger, EventStatus.PROCESSED, created_ago_s=3 * 86400)
    response = admin_client.get(reverse("mission_control:triggers_trigger_changelist"))
    row = response.context["cl"].result_list.get(pk=trigger.pk)
    assert (row.processed_24h, row.failed_24h) == (3, 1)
    assert row.last_delivery_at is not None
    assert "75.0 %" in response.content.decode()


def test_trigger_list_state_filter(admin_client):
    TriggerFactory(name="on")
    TriggerFactory(name="held", paused=True, paused_reason="Gone (410)")
    TriggerFactory(name="off", enabled=False)
    url = reverse("mission_control:triggers_trigger_changelist")

    def names(state: str) -> set[str]:
        response = admin_client.get(url, {"state": state})
        return {t.name for t in response.context["cl"].result_list}

    assert names("enabled") == {"on"}
    assert names("paused") == {"held"}
    assert names("disabled") == {"off"}
    assert "Gone (410)" in admin_client.get(url).content.decode()


def test_event_list_filters(admin_client):
    a = TriggerFactory(name="a", type="order_placed")
    b = TriggerFactory(name="b", type="invoice_paid")
    mine = make_event(a, EventStatus.FAILED)
    make_event(b, EventStatus.PROCESSED)
    old = make_event(a, EventStatus.PROCESSED, created_ago_s=2 * 86400)

    def ids(**params):
        response = admin_client.get(reverse(EVENTS), params)
        return {e.id for e in response.context["cl"].result_list}

    assert ids(status__exact="failed") == {mine.id}
    assert ids(type="order_placed") == {mine.id, old.id}
    assert ids(trigger=str(a.pk)) == {mine.id, old.id}
    assert ids(created="24h", trigger=str(a.pk)) == {mine.id}
    assert ids(created="older30d") == set()


def test_send_test_event_action_shows_the_result(admin_client, receiver):
    trigger = TriggerFactory(type="order_placed", url=receiver.url("/ok/test"))
    response = admin_client.post(
        reverse("mission_control:triggers_trigger_changelist"),
        {"action": "send_test_event", "_selected_action": [trigger.pk]},
        follow=True,
    )
    [message] = [str(m) for m in get_messages(response.wsgi_request)]
    assert message.startswith(f"{trigger.name}: Test event ")
    assert "processed (HTTP 200)" in message
    assert len(receiver.on("/ok/test")) == 1


def test_change_page_buttons_rotate_and_duplicate(admin_client):
    trigger = TriggerFactory(name="hook")
    old = trigger.signing_secret
    rotate = reverse("mission_control:triggers_trigger_operate", args=[trigger.pk, "rotate"])
    assert admin_client.get(rotate).status_code == 405
    admin_client.post(rotate)
    trigger.refresh_from_db()
    assert trigger.signing_secret != old
    duplicate = reverse("mission_control:triggers_trigger_operate", args=[trigger.pk, "duplicate"])
    response = admin_client.post(duplicate)
    assert response.status_code == 302
    assert "hook_copy" in str(list(get_messages(response.wsgi_request))[-1])


def test_health_json(admin_client):
    Heartbeat.objects.create(name="sweep", at=timezone.now())
    data = admin_client.get(reverse("mission_control:health")).json()
    assert set(data) == {"database", "broker", "sweep", "workers", "ok"}
    assert data["sweep"]["ok"] is True
    assert data["broker"]["ok"] in (True, False)
    assert data["workers"]["ok"] in (True, False)
