"""Mission Control's pages as an operator reads them: confirmations, numbering, times, boxes."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from eventing.delivery.synchronous import deliver_now
from eventing.models import EventLog, EventStatus
from mission_control import actions
from mission_control.views import queue_event
from tests.factories import EventTypeFactory, TriggerFactory
from tests.processes import ROOT
from tests.support.mission_control import make_event

pytestmark = pytest.mark.django_db

# The one format of every time on every page, e.g. 2026-11-29 10:05:41 UTC.
TIME_RE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")
# What Django's default DATETIME_FORMAT writes ("Nov. 29, 2026, 10:05 a.m."), and milliseconds.
OTHER_TIME_RE = re.compile(r"\b(a\.m\.|p\.m\.|noon|midnight)|\d\d:\d\d:\d\d\.\d{3}")


def event_page(client: Client, event: EventLog) -> str:
    response = client.get(reverse("mission_control:eventing_eventlog_change", args=[event.pk]))
    assert response.status_code == 200
    return response.content.decode()


def cancel_url(event: EventLog) -> str:
    return reverse("mission_control:eventing_eventlog_operate", args=[event.pk, "cancel"])


def readonly_row(page: str, field: str) -> str:
    """The text of one read-only field's row of a change page (label and value)."""
    match = re.search(
        rf'<div class="form-row[^"]*field-{field}\b.*?</div>\s*</div>', page, flags=re.S
    )
    assert match, f"no field {field} on the page"
    return re.sub(r"<[^>]+>", " ", match.group(0))


def test_cancel_on_the_event_page_asks_first(admin_client):
    event = make_event(TriggerFactory(), EventStatus.STAGED)
    page = event_page(admin_client, event)
    # The page's Cancel is a link to a question, not a form that cancels.
    assert f'href="{cancel_url(event)}"' in page
    assert f'action="{cancel_url(event)}"' not in page

    question = admin_client.get(cancel_url(event))
    assert question.status_code == 200
    body = question.content.decode()
    assert "Cancel event" in body
    assert 'id="mc-cancel-confirm"' in body
    assert "csrfmiddlewaretoken" in body
    event.refresh_from_db()
    assert event.status == EventStatus.STAGED

    response = admin_client.post(cancel_url(event), follow=True)
    assert "Event cancelled." in response.content.decode()
    event.refresh_from_db()
    assert event.status == EventStatus.CANCELLED


def test_cancel_confirmation_needs_the_csrf_token(admin_user):
    event = make_event(TriggerFactory(), EventStatus.STAGED)
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get(cancel_url(event)).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    assert client.post(cancel_url(event)).status_code == 403
    event.refresh_from_db()
    assert event.status == EventStatus.STAGED

    client.post(cancel_url(event), {"csrfmiddlewaretoken": token})
    event.refresh_from_db()
    assert event.status == EventStatus.CANCELLED


def test_cancel_question_for_a_finished_event_offers_no_button(admin_client):
    event = make_event(TriggerFactory(), EventStatus.PROCESSED)
    body = admin_client.get(cancel_url(event)).content.decode()
    assert 'id="mc-cancel-refused"' in body
    assert 'id="mc-cancel-confirm"' not in body
    assert 'id="mc-cancel"' not in event_page(admin_client, event)


def test_a_redelivered_event_numbers_its_deliveries(admin_client, receiver):
    TriggerFactory(type="order_placed", retries=0, url=receiver.url("/flaky/1"))
    [row] = queue_event({"type": "order_placed", "payload": {"n": 1}, "synchronous": True})
    event = EventLog.objects.get(id=row["id"])
    assert event.status == EventStatus.FAILED
    assert actions.redeliver([event.pk]) == 1
    deliver_now([event])
    event.refresh_from_db()
    assert (event.status, event.attempts) == (EventStatus.PROCESSED, 1)

    page = event_page(admin_client, event)
    summaries = re.findall(r"<summary>\s*(Delivery \d+ · attempt \d+)", page)
    assert summaries == ["Delivery 1 · attempt 1", "Delivery 2 · attempt 1"]
    attempts = " ".join(readonly_row(page, "attempts_summary").split())
    assert "1 in delivery 2 · 2 in all" in attempts


def test_an_event_delivered_once_shows_its_attempts_alone(admin_client, receiver):
    TriggerFactory(type="order_placed", retries=0, url=receiver.url("/ok"))
    [row] = queue_event({"type": "order_placed", "payload": {"n": 1}, "synchronous": True})
    page = event_page(admin_client, EventLog.objects.get(id=row["id"]))
    assert re.findall(r"<summary>\s*(Delivery \d+ · attempt \d+)", page) == [
        "Delivery 1 · attempt 1"
    ]
    assert readonly_row(page, "attempts_summary").split()[-1] == "1"


def test_payload_and_schema_boxes_start_empty(admin_client):
    EventTypeFactory(name="order_placed", schema=None)
    queue = admin_client.get(reverse("mission_control:queue_event")).content.decode()
    assert re.search(r'<textarea name="payload"[^>]*>\s*</textarea>', queue)

    add = admin_client.get(reverse("mission_control:triggers_eventtype_add")).content.decode()
    assert re.search(r'<textarea name="schema"[^>]*>\s*</textarea>', add)
    event_type = EventTypeFactory(name="invoice_paid", schema=None)
    change = admin_client.get(
        reverse("mission_control:triggers_eventtype_change", args=[event_type.pk])
    ).content.decode()
    assert re.search(r'<textarea name="schema"[^>]*>\s*</textarea>', change)


def test_a_typed_null_payload_is_shown_as_typed(admin_client):
    EventTypeFactory(name="order_placed", schema={"type": "object"})
    response = admin_client.post(
        reverse("mission_control:queue_event"), {"type": "order_placed", "payload": "null"}
    )
    body = response.content.decode()
    assert re.search(r'<textarea name="payload"[^>]*>\s*null</textarea>', body)
    assert not EventLog.objects.exists()


def test_every_page_writes_times_one_way(admin_client):
    trigger = TriggerFactory(name="orders")
    processed = make_event(trigger, EventStatus.PROCESSED)
    EventTypeFactory(name="order_placed")
    pages = {
        "dashboard": reverse("mission_control:index"),
        "events": reverse("mission_control:eventing_eventlog_changelist"),
        "event": reverse("mission_control:eventing_eventlog_change", args=[processed.pk]),
        "triggers": reverse("mission_control:triggers_trigger_changelist"),
        "trigger": reverse("mission_control:triggers_trigger_change", args=[trigger.pk]),
        "event types": reverse("mission_control:triggers_eventtype_changelist"),
    }
    for name, url in pages.items():
        body = admin_client.get(url).content.decode()
        assert TIME_RE.search(body), name
        assert not OTHER_TIME_RE.search(body), (name, OTHER_TIME_RE.search(body).group(0))
    processed_at = timezone.localtime(processed.processed_at).strftime("%Y-%m-%d %H:%M:%S UTC")
    triggers = admin_client.get(pages["triggers"]).content.decode()
    assert processed_at in triggers  # last delivery


def test_finish_time_is_named_after_how_the_event_finished(admin_client):
    trigger = TriggerFactory()
    processed = make_event(trigger, EventStatus.PROCESSED)
    failed = make_event(trigger, EventStatus.FAILED)
    staged = make_event(trigger, EventStatus.STAGED, deliver_at=timezone.now() + dt.timedelta(1))
    assert actions.cancel([staged.pk]) == 1
    staged.refresh_from_db()

    cancelled_page = event_page(admin_client, staged)
    assert "field-processed" not in cancelled_page
    assert TIME_RE.search(readonly_row(cancelled_page, "cancelled_at"))
    assert "Cancelled at" in readonly_row(cancelled_page, "cancelled_at")

    processed_page = event_page(admin_client, processed)
    assert "field-cancelled_at" not in processed_page
    assert TIME_RE.search(readonly_row(processed_page, "processed"))

    assert "Failed at" in readonly_row(event_page(admin_client, failed), "failed_at")
    waiting = make_event(trigger, EventStatus.STAGED)
    waiting_page = event_page(admin_client, waiting)
    assert not re.search(r"field-(processed|failed_at|cancelled_at)\b", waiting_page)

    # In the list, a cancelled row has no processed time.
    rows = admin_client.get(reverse("mission_control:eventing_eventlog_changelist")).content
    cancelled_row = re.search(
        rf"<tr>(?:(?!</tr>).)*{str(staged.pk)[:8]}(?:(?!</tr>).)*</tr>", rows.decode(), re.S
    ).group(0)
    assert re.search(r'<td class="field-processed">—</td>', cancelled_row)


def test_readme_screenshots_are_committed_images():
    """A fresh clone shows them: they live in docs/screenshots/, not in git-ignored artifacts."""
    root = ROOT
    links = re.findall(r"\]\((docs/screenshots/[^)]+\.png)\)", (root / "README.md").read_text())
    assert len(links) >= 4
    for link in links:
        assert (root / link).read_bytes().startswith(b"\x89PNG"), link
