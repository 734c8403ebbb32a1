"""Cancel, redeliver and reschedule through the pipeline's functions."""

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from eventing import emit
from eventing.dispatch.operations import cancel_events, redeliver_events, reschedule_event
from eventing.models import EventLog, EventStatus, InvocationLog
from tests.factories import TriggerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def rows(message_per_event):
    TriggerFactory(type="order")
    return [emit("order", {"n": n})[0] for n in range(3)]


def test_cancel_only_touches_cancellable_rows(rows):
    EventLog.objects.filter(id=rows[0].id).update(status=EventStatus.PROCESSED)
    assert cancel_events([r.id for r in rows]) == 2
    statuses = dict(EventLog.objects.values_list("id", "status"))
    assert statuses[rows[0].id] == EventStatus.PROCESSED
    assert statuses[rows[1].id] == EventStatus.CANCELLED


def test_redeliver_gives_a_fresh_budget_and_keeps_invocations(
    rows, message_per_event, django_capture_on_commit_callbacks
):
    row = rows[0]
    EventLog.objects.filter(id=row.id).update(status=EventStatus.FAILED, attempts=4)
    InvocationLog.objects.create(
        event_id=row.id, attempt=1, invoked_at=timezone.now(), duration_ms=1, request={}
    )
    message_per_event.reset_mock()
    with django_capture_on_commit_callbacks(execute=True):
        assert redeliver_events([r.id for r in rows]) == 1  # the others are still staged
    row.refresh_from_db()
    assert row.status == EventStatus.STAGED
    assert row.attempts == 0
    assert row.invocations.count() == 1
    assert message_per_event.call_count == 1


def test_reschedule_only_while_staged(rows):
    later = timezone.now() + dt.timedelta(hours=1)
    assert reschedule_event(rows[0].id, later).deliver_at == later
    EventLog.objects.filter(id=rows[1].id).update(status=EventStatus.PROCESSED)
    with pytest.raises(ValidationError):
        reschedule_event(rows[1].id, later)
