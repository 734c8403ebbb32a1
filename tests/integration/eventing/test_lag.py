"""Queue lag: the sweeper does not take messages waiting behind a long queue for lost."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from eventing import emit
from eventing.dispatch import lag, sending
from eventing.maintenance import sweeper
from eventing.models import EventLog, Heartbeat
from tests.factories import TriggerFactory


@pytest.fixture
def swept_ids(monkeypatch):
    """Record what the sweeper publishes instead of sending it."""
    sent = []
    monkeypatch.setattr(
        sending, "publish_due", lambda items, now: sent.extend(i[0] for i in items) or []
    )
    return sent


@pytest.fixture
def overdue(db):
    """A staged event whose message was sent 20 s ago and never taken."""
    TriggerFactory()
    [event] = emit("order_placed", {})
    long_ago = timezone.now() - dt.timedelta(seconds=20)
    EventLog.objects.filter(id=event.id).update(enqueued_at=long_ago, deliver_at=long_ago)
    return event


def test_message_behind_a_long_queue_is_not_resent(overdue, swept_ids):
    now = timezone.now()
    Heartbeat.objects.create(name=lag.LAG_HEARTBEAT, at=now, detail={"lag_s": 30})
    assert lag.recent_lag_s(now) == 30
    sweeper.enqueue_due(now)
    assert swept_ids == []


def test_message_is_resent_once_the_lag_note_is_stale(overdue, swept_ids):
    now = timezone.now()
    stale = now - dt.timedelta(seconds=lag.FRESH_FOR_S + 1)
    Heartbeat.objects.create(name=lag.LAG_HEARTBEAT, at=stale, detail={"lag_s": 30})
    assert lag.recent_lag_s(now) == 0
    sweeper.enqueue_due(now)
    assert swept_ids == [overdue.id]


def test_message_is_resent_when_the_queue_is_short(overdue, swept_ids):
    now = timezone.now()
    Heartbeat.objects.create(name=lag.LAG_HEARTBEAT, at=now, detail={"lag_s": 0.2})
    sweeper.enqueue_due(now)
    assert swept_ids == [overdue.id]


@pytest.mark.django_db
def test_claims_note_the_lag():
    TriggerFactory()
    [event] = emit("order_placed", {})
    now = timezone.now()
    event.enqueued_at = now - dt.timedelta(seconds=7)
    event.deliver_at = now - dt.timedelta(seconds=9)
    lag.note_claim(event, now)
    assert lag.recent_lag_s(now) == pytest.approx(7, abs=0.01)
    lag.note_claim(event, now + dt.timedelta(seconds=5))  # within a second: not written
    assert Heartbeat.objects.get(name=lag.LAG_HEARTBEAT).detail["lag_s"] == pytest.approx(7)
