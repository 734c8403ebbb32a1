"""Mission Control and ordered delivery: a waiting event names the head it waits behind, whose
page has the cancel button that lets its key move on; the trigger form takes the new fields."""

from __future__ import annotations

import pytest
from django.db import transaction
from django.urls import reverse

from eventing import emit
from eventing.delivery.deliver import deliver_event
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


def change_url(event: EventLog) -> str:
    return reverse("mission_control:eventing_eventlog_change", args=[event.pk])


def test_a_waiting_event_shows_the_head_it_is_blocked_behind(admin_client, receiver):
    TriggerFactory(type="order_changed", ordering_key="order", url=receiver.url("/status/500"))
    with transaction.atomic():
        head, behind = (emit("order_changed", {"order": 5, "n": n})[0] for n in range(2))
    deliver_event(str(head.id))  # fails: retried later, still the head

    page = admin_client.get(change_url(behind)).content.decode()

    assert f'href="{change_url(head)}" class="mc-blocked-behind">{head.pk}</a>' in page
    head_page = admin_client.get(change_url(head)).content.decode()
    assert 'id="mc-cancel"' in head_page
    assert "mc-blocked-behind" not in head_page


def test_cancelling_the_head_from_its_page_unblocks_its_key(
    admin_client, receiver, publish_inline, django_capture_on_commit_callbacks, deliver_messages
):
    TriggerFactory(type="order_changed", ordering_key="order", url=receiver.url("/ok/keyed"))
    with transaction.atomic():
        head, behind = (emit("order_changed", {"order": 5, "n": n})[0] for n in range(2))
    deliver_messages.reset_mock()

    with django_capture_on_commit_callbacks(execute=True):
        operate = reverse("mission_control:eventing_eventlog_operate", args=[head.pk, "cancel"])
        assert admin_client.post(operate).status_code == 302

    assert EventLog.objects.get(id=head.id).status == EventStatus.CANCELLED
    assert "mc-blocked-behind" not in admin_client.get(change_url(behind)).content.decode()
    assert [c.args[0][0] for c in deliver_messages.call_args_list] == [str(behind.id)]


def test_the_trigger_form_saves_ordering_and_protection(admin_client):
    trigger = TriggerFactory(type="order_changed", url="https://example.com/hook")
    url = reverse("mission_control:triggers_trigger_change", args=[trigger.pk])
    page = admin_client.get(url).content.decode()
    for name in ("ordering_key", "rate_limit", "max_in_flight"):
        assert f'name="{name}"' in page
