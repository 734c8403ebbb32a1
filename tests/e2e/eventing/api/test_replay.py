"""Replay by time range: the API's dry run counts the window, the replay re-sends exactly it
through a real worker to a real receiver; the command and the events it picks."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventing import emit
from eventing.dispatch.operations import Replay, replay
from eventing.models import EventLog, EventStatus
from tests.factories import TriggerFactory
from tests.waiting import wait_until

START = dt.datetime(2026, 11, 1, 12, 0, tzinfo=dt.UTC)


def delivered_events(receiver, path: str) -> list[str]:
    return [request.json()["id"] for request in receiver.on(path)]


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_replay_resends_exactly_the_window_and_the_dry_run_counted_it(worker, receiver, staff):
    trigger = TriggerFactory(type="order_placed", url=receiver.url("/ok/replay"))
    other = TriggerFactory(type="order_placed", url=receiver.url("/ok/other"))
    events = [emit("order_placed", {"n": n}) for n in range(6)]
    receiver.wait_for("/ok/replay", count=6)
    receiver.wait_for("/ok/other", count=6)
    wait_until(
        lambda: EventLog.objects.filter(status=EventStatus.PROCESSED).count() == 12,
        message="every event processed",
    )
    # Six of the trigger's events an hour apart from START: the window [+1 h, +4 h) holds
    # three, processed; one of those three is made failed to show the status filter.
    mine = [next(e for e in rows if e.trigger_id == trigger.pk) for rows in events]
    for hours, event in enumerate(mine):
        EventLog.objects.filter(id=event.id).update(created_at=START + dt.timedelta(hours=hours))
    EventLog.objects.filter(trigger=other).update(created_at=START + dt.timedelta(hours=2))
    EventLog.objects.filter(id=mine[2].id).update(status=EventStatus.FAILED)
    body = {
        "trigger": trigger.name,
        "since": (START + dt.timedelta(hours=1)).isoformat(),
        "until": (START + dt.timedelta(hours=4)).isoformat(),
        "status": ["processed"],
    }
    url = "/api/eventing/events/replay/"

    dry = staff.post(url, {**body, "dry_run": True}, format="json")
    assert dry.status_code == 200, dry.content
    assert dry.json() == {"dry_run": True, "count": 2, "by_trigger": {trigger.name: 2}}
    assert len(receiver.on("/ok/replay")) == 6  # a dry run sends nothing

    done = staff.post(url, body, format="json")
    assert done.status_code == 200, done.content
    assert done.json()["count"] == dry.json()["count"]

    window = {str(mine[1].id), str(mine[3].id)}
    receiver.wait_for("/ok/replay", count=8)
    assert sorted(delivered_events(receiver, "/ok/replay")[6:]) == sorted(window)
    wait_until(
        lambda: all(EventLog.objects.get(id=pk).status == EventStatus.PROCESSED for pk in window),
        message="replayed events processed",
    )
    for event in mine:
        row = EventLog.objects.get(id=event.id)
        # A replayed event keeps its earlier invocation and adds one; the rest are untouched.
        assert row.invocations.count() == (2 if str(event.id) in window else 1)
    assert EventLog.objects.get(id=mine[2].id).status == EventStatus.FAILED
    assert len(receiver.on("/ok/other")) == 6


@pytest.mark.django_db
def test_replay_refuses_an_inverted_window_and_needs_a_trigger_or_type(staff):
    url = "/api/eventing/events/replay/"
    inverted = staff.post(
        url,
        {"type": "order_placed", "since": START.isoformat(), "until": START.isoformat()},
        format="json",
    )
    assert inverted.status_code == 400
    assert "until" in inverted.json()["detail"]
    nameless = staff.post(
        url,
        {"since": START.isoformat(), "until": (START + dt.timedelta(hours=1)).isoformat()},
        format="json",
    )
    assert nameless.status_code == 400
    assert "trigger" in nameless.json()["detail"]


@pytest.mark.django_db
def test_replay_refuses_an_unfinished_status_naming_the_field(staff):
    answer = staff.post(
        "/api/eventing/events/replay/",
        {
            "type": "order_placed",
            "since": START.isoformat(),
            "until": (START + dt.timedelta(hours=1)).isoformat(),
            "status": ["failed", "staged"],
        },
        format="json",
    )
    assert answer.status_code == 400
    assert "status" in answer.json()["detail"]
    assert "staged: only finished events" in answer.json()["detail"]


@pytest.mark.django_db
def test_replay_needs_the_redeliver_permission(plain):
    answer = plain.post(
        "/api/eventing/events/replay/",
        {
            "type": "order_placed",
            "since": START.isoformat(),
            "until": (START + dt.timedelta(hours=1)).isoformat(),
        },
        format="json",
    )
    assert answer.status_code == 403


@pytest.mark.django_db
def test_replay_by_type_in_batches_counts_what_it_stages(deliver_messages):
    a = TriggerFactory(type="shipped")
    b = TriggerFactory(type="shipped")
    TriggerFactory(type="other_type")
    emit("shipped", {})
    emit("shipped", {})
    emit("other_type", {})
    EventLog.objects.update(status=EventStatus.FAILED, created_at=timezone.now())
    window = Replay(
        since=timezone.now() - dt.timedelta(hours=1),
        until=timezone.now() + dt.timedelta(hours=1),
        types=("shipped",),
    )
    assert window.count_by_trigger() == {a.name: 2, b.name: 2}
    steps = []
    assert replay(window, batch_size=3, progress=steps.append) == 4
    assert steps == [3, 4]
    assert EventLog.objects.filter(type="shipped", status=EventStatus.STAGED).count() == 4
    assert EventLog.objects.get(type="other_type").status == EventStatus.FAILED
