"""Mission Control: the replay page (count, then confirm), open circuits on the dashboard and
the trigger page, the retry policy on the trigger form."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from eventing.models import CircuitState, EventLog, EventStatus, TriggerCircuit
from mission_control import dashboard
from tests.factories import TriggerFactory
from tests.support.mission_control import make_event

pytestmark = pytest.mark.django_db


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_replay_page_counts_first_then_replays_exactly_that_window(admin_client):
    trigger = TriggerFactory()
    inside = [make_event(trigger, EventStatus.FAILED, created_ago_s=3600 * h) for h in (2, 3)]
    before = make_event(trigger, EventStatus.FAILED, created_ago_s=3600 * 30)
    processed = make_event(trigger, EventStatus.PROCESSED, created_ago_s=3600 * 2)
    now = timezone.localtime()
    form = {
        "trigger": trigger.pk,
        "since": (now - timezone.timedelta(hours=24)).strftime("%Y-%m-%dT%H:%M"),
        "until": (now + timezone.timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "statuses": ["failed"],
    }
    url = reverse("mission_control:eventing_eventlog_replay")
    assert admin_client.get(url, {"trigger": trigger.pk}).status_code == 200

    preview = admin_client.post(url, form)
    assert preview.status_code == 200
    assert "2 events would be redelivered" in preview.content.decode()
    assert f"{trigger.name}: 2" in preview.content.decode()
    assert EventLog.objects.filter(status=EventStatus.FAILED).count() == 3  # nothing changed

    done = admin_client.post(url, {**form, "confirm": "True"}, follow=True)
    assert "2 events redelivered." in messages_of(done)
    assert {e.id for e in EventLog.objects.filter(status=EventStatus.STAGED)} == {
        e.id for e in inside
    }
    assert EventLog.objects.get(id=before.id).status == EventStatus.FAILED
    assert EventLog.objects.get(id=processed.id).status == EventStatus.PROCESSED


def test_replay_page_needs_a_trigger_or_a_type(admin_client):
    url = reverse("mission_control:eventing_eventlog_replay")
    answer = admin_client.post(
        url, {"since": "2026-11-01T00:00", "until": "2026-11-02T00:00", "statuses": ["failed"]}
    )
    assert "Choose a trigger or give a type." in answer.content.decode()


def test_open_circuits_show_on_the_dashboard_and_the_trigger_page(admin_client):
    broken = TriggerFactory(circuit_failures=3)
    TriggerFactory()
    now = timezone.now()
    TriggerCircuit.objects.create(
        trigger=broken,
        state=CircuitState.OPEN,
        consecutive_failures=3,
        failing_since=now,
        opened_at=now,
        next_probe_at=now,
        last_error="HTTP 503",
    )
    [row] = dashboard.build(with_health=False).open_circuits
    assert (row["trigger_name"], row["consecutive_failures"]) == (broken.name, 3)
    page = admin_client.get(reverse("mission_control:index")).content.decode()
    assert 'id="mc-circuits"' in page
    assert broken.name in page
    change = admin_client.get(
        reverse("mission_control:triggers_trigger_change", args=[broken.pk])
    ).content.decode()
    assert "next probe at" in change
    assert "HTTP 503" in change
    listing = admin_client.get(reverse("mission_control:triggers_trigger_changelist"))
    assert "circuit open" in listing.content.decode()
